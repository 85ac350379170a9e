"""Run the prediction service: as a ZenML pipeline deployment through the active stack's
deployer (in the background), or in this process (the foreground, what a container or a
process supervisor runs). Stop it, and say what runs.

A deployment is the inference pipeline (pipelines/inference.py) deployed under the name
`<model>-<port>`; its app is zenloop's service (api.deployment_runner). The deployer
starts, stops and tracks it (its process or container, its state, URL and logs): `zenml
deployment list / describe / logs / deprovision` see what `zenloop serve` and `zenloop
deploy` start.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml
from zenml.client import Client
from zenml.enums import DeploymentStatus
from zenml.models import DeploymentResponse

from api.app import CONFIG_ENV
from api.settings import ServingConfig
from api.shared_selection import SelectionBoard
from ops import probes
from ops.processes import STOP_TIMEOUT_S, plain_output
from ops.stacks import use_stack_tracking
from zenloop.admin_token import share_admin_token
from zenloop.errors import OperationError
from zenloop.paths import data_dir
from zenloop.waiting import poll_until

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 180.0
DEPLOYMENTS_DIR = "deployments"  # the run configs the deployments were made from
PIPELINE_NAME = "inference_pipeline"
NAME_CHARS = str.maketrans({c: "-" for c in "_. /"})


def deployment_name(config: ServingConfig) -> str:
    """One deployment per model and port: `zenloop-8000`."""
    return f"{config.model.name}-{config.port}".translate(NAME_CHARS).lower()


def resolved(config: ServingConfig) -> ServingConfig:
    """The config with the registry filled in from the active stack when it names none."""
    if config.tracking_uri is not None:
        return config
    return config.model_copy(update={"tracking_uri": use_stack_tracking()})


def run_config(config: ServingConfig) -> dict[str, Any]:
    """The inference pipeline's run config for this service: the serving config travels
    in the snapshot (the admin token never: the service reads it from its environment or
    the data folder), and the deployer serves on its address."""
    serving = config.model_dump(mode="json", exclude={"admin_token"})
    return {
        "run_name": f"{deployment_name(config)}-{{date}}-{{time}}",  # one run per invoke
        "steps": {
            "predict_rows": {
                "parameters": {"model_name": config.model.name, "alias": config.model.alias}
            }
        },
        "settings": {
            "deployment": {
                "deployment_app_runner_kwargs": {"serving": serving},
                "uvicorn_host": config.host,
                "uvicorn_port": config.port,
                "uvicorn_workers": config.workers,
            },
            "deployer": {"port": config.port},
        },
    }


def write_run_config(config: ServingConfig) -> Path:
    """The run config a deployment of `config` is made from, in the data folder."""
    path = data_dir() / DEPLOYMENTS_DIR / f"{deployment_name(config)}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(run_config(config), sort_keys=False))
    return path


def deploy(config: ServingConfig) -> DeploymentResponse:
    """Deploy (or redeploy) the service through the active stack's deployer; returns once
    the deployer says it runs and its health check answers."""
    from pipelines.docker_settings import for_active_stack
    from pipelines.inference import inference_pipeline

    config = resolved(config)
    name = deployment_name(config)
    path = write_run_config(config)
    share_admin_token(config.admin_token)  # a container has the data folder, not our env
    if Client().active_stack.deployer is None:
        raise OperationError(
            f"the active stack '{Client().active_stack_model.name}' has no deployer: "
            "run `zenloop stack up local` (or server, docker)"
        )
    deployable = for_active_stack(inference_pipeline).with_options(config_path=str(path))
    with plain_output():  # the local deployer's daemon.log: it copies our environment
        deployment = deployable.deploy(deployment_name=name, timeout=int(START_TIMEOUT_S))
    if deployment.status != DeploymentStatus.RUNNING:
        raise OperationError(
            f"deployment {name} is {deployment.status}: `zenml deployment logs {name}` says why"
        )
    return deployment


def deployments(
    config: ServingConfig | None = None, port: int | None = None
) -> list[DeploymentResponse]:
    """zenloop's service deployments in this ZenML store, running or not: the one for
    `config`, or the ones serving on `port` (any model), or all."""
    found = Client().list_deployments(size=1_000, hydrate=True).items
    ours = [d for d in found if d.snapshot and d.snapshot.pipeline.name == PIPELINE_NAME]
    if config is not None:
        ours = [d for d in ours if d.name == deployment_name(config)]
    if port is not None:
        ours = [d for d in ours if d.name.endswith(f"-{port}")]
    return ours


def stop(deployment: DeploymentResponse) -> None:
    """Deprovision: the deployer stops the service (SIGTERM: in-flight requests finish and
    the log writer drains) and forgets its process."""
    Client().deprovision_deployment(deployment.id, timeout=int(STOP_TIMEOUT_S))


def stop_all(config: ServingConfig | None = None, port: int | None = None) -> list[str]:
    """Deprovision every zenloop service deployment that runs (the one for `config`, the
    ones on `port`); their names."""
    running = [d for d in deployments(config, port) if d.status != DeploymentStatus.ABSENT]
    for deployment in running:
        stop(deployment)
    return [d.name for d in running]


def pid_of(deployment: DeploymentResponse) -> int | None:
    """The service's process, when the deployer runs it on this machine."""
    pid = (deployment.deployment_metadata or {}).get("pid")
    return int(pid) if pid else None


def serve_foreground(config: ServingConfig) -> None:
    """Serve in this process (a compose replica, a supervisor's process); the registry is
    the active stack's unless the config names one."""
    config = resolved(config)
    os.environ[CONFIG_ENV] = config.model_dump_json()
    SelectionBoard.of(config).clear()  # a fresh start serves what its config says
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=config.host,
        port=config.port,
        workers=config.workers,
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=int(STOP_TIMEOUT_S),
    )


def answers(config: ServingConfig, path: str = "/health") -> bool:
    return probes.answers(config.url + path)


def wait_ready(config: ServingConfig, timeout: float, require_model: bool = True) -> bool:
    return poll_until(lambda: answers(config, "/ready" if require_model else "/health"), timeout)


def ensure_running(config: ServingConfig) -> DeploymentResponse | None:
    """Deploy the service unless one answers already; the deployment when this call made it."""
    if answers(config):
        return None
    return deploy(config)


@dataclass
class ServiceStatus:
    url: str
    ready: bool
    model: dict | None
    deployment: DeploymentResponse | None

    @property
    def pid(self) -> int | None:
        return None if self.deployment is None else pid_of(self.deployment)


def status(config: ServingConfig) -> ServiceStatus:
    url = config.url
    try:
        info = httpx.get(url + "/model-info", timeout=probes.PROBE_TIMEOUT_S)
        model = info.json() if info.status_code == 200 else None
    except httpx.HTTPError:
        model = None
    found = deployments(config)
    return ServiceStatus(url, model is not None, model, found[0] if found else None)


def log_file(deployment: DeploymentResponse) -> Path | None:
    """The local deployer's log of the service (`zenml deployment logs` reads it too)."""
    path = (deployment.deployment_metadata or {}).get("log_file")
    return Path(path) if path else None
