"""Every loop in this checkout: the models whose service was deployed or whose monitor ran
from this data folder, each with the serving config that says where it serves and logs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from api.settings import ServingConfig, load_serving_config
from ops.monitor_service import read_heartbeat, watched_models
from ops.service import DEPLOYMENTS_DIR
from zenloop.config import ConfigError
from zenloop.paths import data_dir

logger = logging.getLogger(__name__)


@dataclass
class Loop:
    """One model's loop: its service's config (None when nothing says where it serves)
    and its monitor's last heartbeat (None when no monitor ran)."""

    model: str
    serving: ServingConfig | None
    heartbeat: dict | None


def deployed_serving_configs() -> list[ServingConfig]:
    """The serving configs the service deployments were made from (their run configs)."""
    found = []
    for path in sorted((data_dir() / DEPLOYMENTS_DIR).glob("*.yaml")):
        try:
            settings = yaml.safe_load(path.read_text())["settings"]["deployment"]
            found.append(
                ServingConfig.model_validate(settings["deployment_app_runner_kwargs"]["serving"])
            )
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValidationError) as exc:
            logger.warning("skipping %s: not a service's run config (%s)", path, exc)
    return found


def _heartbeat_serving(beat: dict) -> ServingConfig | None:
    path = beat.get("serving_config")
    if not path or not Path(path).is_file():
        return None
    try:
        return load_serving_config(Path(path))
    except ConfigError as exc:
        logger.warning("the monitor of %s names %s: %s", beat.get("model"), path, exc)
        return None


def loops_here() -> list[Loop]:
    """Every model with a deployed service or a monitor here, by name; a monitor's own
    serving config wins over a deployment's record of it."""
    loops: dict[str, Loop] = {}
    for config in deployed_serving_configs():
        loops.setdefault(config.model.name, Loop(config.model.name, config, None))
    for model in watched_models():
        beat = read_heartbeat(model)
        loop = loops.setdefault(model, Loop(model, None, None))
        loop.heartbeat = beat
        if beat is not None:
            loop.serving = _heartbeat_serving(beat) or loop.serving
    return sorted(loops.values(), key=lambda loop: loop.model)
