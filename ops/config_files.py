"""The config files `zenloop init` writes: one consistent set for one model.

Training, serving, deployment, monitoring and page configs all name the same model and
experiment. The serving file is the one place that decides the service's port, the
monitor's event address and the prediction log; the other files point at it
(`serving_config`) and read them there. Every file is a commented YAML file a user can
edit, and each loads with the same validators the commands use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from api.settings import EventConfig, PredictionLogConfig
from zenloop.config import (
    DEFAULT_EXPERIMENT,
    ColumnRole,
    DeploymentConfig,
    MonitorConfig,
    TrainingConfig,
)
from zenloop.models import supports

INDENT = "  "
MODEL_NAME_PATTERN = re.compile(r"[^a-z0-9_-]+")
VALID_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # registry, experiment, folder
LOG_DATABASE = "sqlite:///{{data_dir}}/{name}/predictions.db"  # one log per model
FILES = ("training", "serving", "deployment", "monitoring", "ui", "inference")


def model_name_for(data_path: str) -> str:
    """A model name from the data file's name: `Bike Share.csv` -> `bike-share`."""
    stem = Path(data_path.rstrip("/")).stem.lower()
    return MODEL_NAME_PATTERN.sub("-", stem).strip("-_") or "model"


@dataclass(frozen=True)
class Ports:
    service: int
    events: int
    page: int


@dataclass(frozen=True)
class ConfigSet:
    """Where the files of one model go (an absolute folder: the files name each other by
    absolute paths, so every command works from any folder), and what they share."""

    folder: Path
    name: str
    ports: Ports

    def path(self, kind: str) -> Path:
        return self.folder / f"{kind}.yaml"

    @property
    def paths(self) -> dict[str, Path]:
        return {kind: self.path(kind) for kind in FILES}

    @property
    def serving(self) -> str:
        """The serving file as the other files name it (YAML-quoted where needed)."""
        return _flow(str(self.path("serving")))


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def _dump(value: dict[str, Any], depth: int) -> list[str]:
    """A mapping as YAML lines at `depth`, each scalar and list in flow style."""
    lines = []
    for key, item in value.items():
        prefix = INDENT * depth + f"{key}:"
        if isinstance(item, dict) and item:
            lines.append(prefix)
            lines.extend(_dump(item, depth + 1))
        elif isinstance(item, list) and item and all(isinstance(x, dict) for x in item):
            lines.append(prefix)
            lines.extend(INDENT * (depth + 1) + f"- {_flow(entry)}" for entry in item)
        else:
            lines.append(f"{prefix} {_flow(item)}")
    return lines


def _text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def _model_link(name: str) -> list[str]:
    """`model:` of a deployment or monitoring run: the champion's ZenML model version."""
    return [
        "model:",
        f"{INDENT}name: {_flow(name)}",
        f"{INDENT}version: production   # the champion",
    ]


def chosen_roles(
    schema: Any, frame: Any, drop: tuple[str, ...], keep: tuple[str, ...]
) -> dict[str, ColumnRole]:
    """Roles for `init --drop` (ignored) and `--keep` (a flagged column used: a key as the
    codes it is, high cardinality; a row number or counter with the role its values have)."""
    from zenloop.config import ProfileConfig
    from zenloop.schema import FlagKind, infer_role

    roles = {column: ColumnRole.IGNORE for column in drop}
    for column in keep:
        role = infer_role(frame[column], ProfileConfig())
        code = schema.column(column).flagged(FlagKind.KEY, FlagKind.UNIQUE_KEY)
        roles[column] = ColumnRole.HIGH_CARDINALITY if code or role == ColumnRole.IGNORE else role
    return roles


def training_file(configs: ConfigSet, data: dict[str, Any], schema: Any, task_reason: str) -> str:
    """The training run config, with comments that say what was inferred."""
    defaults = TrainingConfig()
    roles = []
    for spec in schema.columns:
        note = "; ".join(f"{f.kind.value}: {f.reason}" for f in spec.flags)
        roles.append(
            INDENT * 4 + f"{spec.name}: {spec.role.value}" + (f"   # {note}" if note else "")
        )
    features = defaults.features.model_dump(
        mode="json", exclude={"preset", "bins", "ratios", "interactions"}
    )
    candidates = [
        c.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
        for c in defaults.candidates
        if supports(c.family, schema.task)
    ]
    sections = {
        "split": defaults.split.model_dump(mode="json", exclude_none=True),
        "history": defaults.history.model_dump(mode="json", exclude_none=True),
        "candidates": candidates,
        "gates": defaults.gates.model_dump(mode="json", exclude_none=True),
    }
    description = f"a tabular model of {data['target']}, one version per run"
    return _text(
        [
            f"# Training run configuration for {data['path']}, written by `zenloop init`.",
            f"#   zenloop train -c {configs.path('training')}",
            f"# Task {data['task']}: the target {data['target']!r} is {task_reason}.",
            "# Column roles were inferred from the values: edit any of them (numeric,",
            "# categorical, high_cardinality, text, datetime, ignore). Flagged row numbers,",
            "# counters and keys are ignored; give them another role to use them. A column",
            "# flagged target_proxy may leak the target: `ignore` drops it.",
            "# data.time_column orders the rows in time: validation and test are the latest",
            "# rows (null: a random split).",
            "# Every other option is documented in zenloop.config.TrainingConfig.",
            "model:",
            f"{INDENT}name: {_flow(configs.name)}",
            f"{INDENT}description: {_flow(description)}",
            f"{INDENT}tags: [zenloop]",
            "",
            "settings:",
            f"{INDENT}experiment_tracker:",
            # the stack's experiment, which `zenloop stack up` creates with its artifact
            # store (one MLflow would make on first use keeps artifacts in ./mlruns)
            f"{INDENT * 2}experiment_name: {DEFAULT_EXPERIMENT}",
            "",
            "parameters:",
            f"{INDENT}config:",
            f"{INDENT * 2}data:",
            *_dump(data, 3),
            f"{INDENT * 2}metric: null   # the primary metric: rmse, mae; roc_auc, log_loss",
            f"{INDENT * 2}profile:",
            f"{INDENT * 3}column_roles:",
            *roles,
            f"{INDENT * 2}features:",
            *_dump(features, 3),
            *_dump(sections, 2),
        ]
    )


def serving_file(configs: ConfigSet) -> str:
    log, events = PredictionLogConfig(), EventConfig()
    return _text(
        [
            f"# The prediction service for {configs.name}, written by `zenloop init`.",
            f"#   zenloop serve -c {configs.path('serving')} [--detach]",
            "# The one place for the service's address, the monitor's event address and the",
            "# prediction log: the deployment, monitoring and page configs read them here.",
            "# Every other option is documented in api.settings.ServingConfig.",
            "host: 127.0.0.1",
            f"port: {configs.ports.service}",
            "model:",
            f"{INDENT}name: {_flow(configs.name)}",
            f"{INDENT}alias: champion        # followed: a new champion is hot-reloaded",
            "log:",
            f"{INDENT}database_url: {_flow(LOG_DATABASE.format(name=configs.name))}"
            "   # or postgresql://...",
            f"{INDENT}acknowledge: {log.acknowledge}   # a 200 means the logged row is committed",
            "events:                   # the service tells the monitor about new traffic",
            f"{INDENT}url: http://127.0.0.1:{configs.ports.events}/events",
            f"{INDENT}every_rows: {events.every_rows}",
        ]
    )


def deployment_file(configs: ConfigSet) -> str:
    deploy = DeploymentConfig()
    return _text(
        [
            f"# Deployment pipeline run configuration for {configs.name}, by `zenloop init`.",
            f"#   zenloop deploy -c {configs.path('deployment')}   (starts the service if none",
            "#   answers), or: zenml pipeline run pipelines.deployment.deployment_pipeline -c …",
            *_model_link(configs.name),
            'run_name: "deployment-{date}-{time}"',
            "parameters:",
            f"{INDENT}deploy:",
            f"{INDENT * 2}model_name: {_flow(configs.name)}",
            f"{INDENT * 2}alias: champion",
            f"{INDENT * 2}serving_config: {configs.serving}   # the service handed to",
            f"{INDENT * 2}max_p50_latency_ms: {_flow(deploy.max_p50_latency_ms)}",
        ]
    )


def monitoring_file(configs: ConfigSet) -> str:
    defaults = MonitorConfig()
    sections = {
        "window": defaults.window.model_dump(mode="json", exclude_none=True),
        "drift": defaults.drift.model_dump(mode="json"),
        "policy": defaults.policy.model_dump(mode="json"),
    }
    retrain = defaults.retrain.model_dump(mode="json", exclude={"fallback"})
    retrain |= {
        "training_config": str(configs.path("training")),
        "deployment_config": str(configs.path("deployment")),
    }
    return _text(
        [
            f"# Monitoring run configuration for {configs.name}, written by `zenloop init`;",
            "# the monitor service reads it too.",
            f"#   zenloop monitor -c {configs.path('monitoring')} --watch --detach",
            "# Every option is documented in zenloop.config.MonitorConfig.",
            *_model_link(configs.name),
            'run_name: "monitoring-{date}-{time}"',
            "parameters:",
            f"{INDENT}monitor:",
            f"{INDENT * 2}model_name: {_flow(configs.name)}",
            f"{INDENT * 2}alias: champion",
            f"{INDENT * 2}serving_config: {configs.serving}   # its log and event address",
            *_dump(sections, 2),
            f"{INDENT * 2}retrain:             # retrains on logged rows with feedback",
            *_dump(retrain, 3),
        ]
    )


def inference_file(configs: ConfigSet) -> str:
    """The service as a ZenML deployment, for ZenML's own `zenml pipeline deploy`; it reads
    the serving file, whose port it repeats (`zenloop serve --detach` needs neither)."""
    name = f"{configs.name}-{configs.ports.service}".lower().replace("_", "-").replace(".", "-")
    return _text(
        [
            f"# The prediction service for {configs.name} as a ZenML pipeline deployment, for",
            "# ZenML's own command (zenloop serve --detach and zenloop deploy need no file):",
            f"#   zenml pipeline deploy pipelines.inference.inference_pipeline -n {name} \\",
            f"#       -c {configs.path('inference')}",
            f'run_name: "{name}-{{date}}-{{time}}"   # one run per `zenml deployment invoke`',
            "steps:",
            f"{INDENT}predict_rows:",
            f"{INDENT * 2}parameters: {{model_name: {_flow(configs.name)}, alias: champion}}",
            "settings:",
            f"{INDENT}deployment:",
            f"{INDENT * 2}deployment_app_runner_kwargs: {{serving_config: {configs.serving}}}",
            f"{INDENT * 2}uvicorn_host: 127.0.0.1",
            f"{INDENT * 2}uvicorn_port: {configs.ports.service}   # the serving file's port",
            f"{INDENT}deployer: {{port: {configs.ports.service}}}",
        ]
    )


def ui_file(configs: ConfigSet) -> str:
    return _text(
        [
            f"# The operations page for {configs.name}, written by `zenloop init`.",
            f"#   zenloop ui -c {configs.path('ui')} [--detach]",
            "host: 127.0.0.1",
            f"port: {configs.ports.page}",
            f"serving_config: {configs.serving}   # the service and log it shows",
        ]
    )


def port_clashes(configs: ConfigSet, others: list[Path]) -> list[str]:
    """Other serving configs that use this set's service or event port: their services
    cannot run at the same time as this one."""
    from urllib.parse import urlsplit

    from api.settings import load_serving_config
    from zenloop.config import ConfigError

    ours = {configs.ports.service, configs.ports.events}
    notes = []
    for path in others:
        if not path.is_file() or path.resolve() == configs.path("serving"):
            continue
        try:
            other = load_serving_config(path)
        except ConfigError:
            continue
        theirs = {other.port} | ({urlsplit(other.events.url).port} if other.events.url else set())
        if shared := ours & theirs:
            ports = ", ".join(map(str, sorted(shared)))
            notes.append(f"{shown(path)} uses port {ports} too: run one at a time, or --port")
    return notes


def shown(path: Path) -> Path:
    """A path as the user sees it from here: relative to the working folder when inside it."""
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def loop_commands(configs: ConfigSet) -> list[str]:
    """The commands that run the whole loop on this set, in order."""
    paths = {kind: shown(path) for kind, path in configs.paths.items()}
    return [
        f"zenloop train -c {paths['training']}",
        f"zenloop deploy -c {paths['deployment']}",
        f"zenloop monitor -c {paths['monitoring']} --watch --detach",
        f"zenloop ui -c {paths['ui']} --detach",
        f"zenloop replay -c {paths['serving']} --data NEWER_ROWS.csv --feedback",
        f"zenloop status -c {paths['serving']}",
        "zenloop monitor --stop; zenloop ui --stop; zenloop serve --stop",
    ]
