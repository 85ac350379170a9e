"""Stacks by name: one file each under configs/stacks/, set up and torn down idempotently.

`up` starts the servers a stack needs (a ZenML server with its dashboard, an MLflow
tracking server), registers what is missing, and activates the stack; running it twice
changes nothing. `down` stops what `up` started. Pipelines never change between stacks.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import mlflow
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from zenml.client import Client
from zenml.constants import ENV_ZENML_REPOSITORY_PATH
from zenml.enums import StackComponentType
from zenml.utils import source_utils

from ops.probes import answers
from ops.processes import BackgroundProcess
from zenloop.admin_token import ensure_admin_token
from zenloop.config import DEFAULT_EXPERIMENT, ConfigError, format_validation_error
from zenloop.errors import OperationError
from zenloop.paths import PROJECT_ROOT, data_dir
from zenloop.tracking import ensure_experiment

logger = logging.getLogger(__name__)

STACKS_DIR_ENV = "ZENLOOP_STACKS_DIR"  # tests point this at stack files with free ports
ALERT_WEBHOOK_ENV = "ZENLOOP_ALERT_WEBHOOK"  # `{alert_webhook}`: where the alerter posts
LOCALHOST = "127.0.0.1"
FALLBACK_STACK = "local"  # what `down` activates instead of a stack it stopped
MLFLOW_START_TIMEOUT_S = 120.0
ZENML_START_TIMEOUT_S = 180.0
ZENML_STOP_TIMEOUT_S = 60.0
DEFAULT_COMPONENT = "default"  # ZenML's own local orchestrator and artifact store

ComponentKind = Literal[
    "orchestrator",
    "artifact_store",
    "experiment_tracker",
    "model_registry",
    "image_builder",  # stacks that run steps in containers (docker, remote)
    "container_registry",  # where a remote orchestrator pulls the step images from
    "deployer",  # where the prediction service runs: a process, a container, a pod
    "alerter",  # where alerts go: a webhook (ops/webhook_alerter.py)
]


class StrictSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentSpec(StrictSpec):
    name: str
    flavor: str
    configuration: dict[str, Any] = Field(default_factory=dict)


class SecretValue(StrictSpec):
    """A secret's value is never in the file: it comes from `env`, else `default` (a
    placeholder, or `{admin_token}`: the service's admin token, as `zenloop serve` finds it)."""

    env: str
    default: str | None = None


class ServerSpec(StrictSpec):
    port: int = Field(ge=1, le=65535)


class MLflowServerSpec(ServerSpec):
    backend_store: str
    artifacts: str


class DockerSpec(StrictSpec):
    """A stack whose steps run in containers: `up` checks the daemon and builds the images."""

    build_images: bool = Field(
        default=True,
        description="build the base image and zenloop's image at `up`, so a first run "
        "only adds the code layer",
    )


class ExperimentSpec(StrictSpec):
    name: str = DEFAULT_EXPERIMENT
    artifact_root: str | None = None


class FlavorSpec(StrictSpec):
    """A flavor of zenloop's own, registered from its source before the components."""

    kind: ComponentKind
    source: str  # e.g. ops.host_network_deployer.HostNetworkDockerDeployerFlavor


class StackFile(StrictSpec):
    name: str
    description: str = ""
    flavors: list[FlavorSpec] = Field(default_factory=list)
    zenml_server: ServerSpec | None = None
    mlflow_server: MLflowServerSpec | None = None
    components: dict[ComponentKind, ComponentSpec]
    secrets: dict[str, dict[str, SecretValue]] = Field(default_factory=dict)
    step_secrets: list[str] = Field(
        default_factory=list,
        description="secrets (of `secrets`) attached to the stack: their keys are environment "
        "variables of every step, wherever it runs",
    )
    experiment: ExperimentSpec = Field(default_factory=ExperimentSpec)
    docker: DockerSpec | None = None

    @model_validator(mode="after")
    def _step_secrets_are_declared(self) -> StackFile:
        if undeclared := set(self.step_secrets) - set(self.secrets):
            raise ValueError(f"step_secrets {sorted(undeclared)} are not under secrets")
        return self

    @property
    def mlflow_url(self) -> str | None:
        return f"http://{LOCALHOST}:{self.mlflow_server.port}" if self.mlflow_server else None

    @property
    def dashboard_url(self) -> str | None:
        return f"http://{LOCALHOST}:{self.zenml_server.port}" if self.zenml_server else None

    def render(self, value: Any) -> Any:
        """Fill `{data_dir}`, `{mlflow_url}`, `{admin_token}` and `{alert_webhook}` (empty
        when ZENLOOP_ALERT_WEBHOOK is unset); ZenML's `{{secret.key}}` references stay.

        Nested mappings and lists (e.g. the Docker orchestrator's `run_args`) are filled too.
        """
        if isinstance(value, dict):
            return {self.render(k): self.render(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(item) for item in value]
        if not isinstance(value, str):
            return value
        if "{admin_token}" in value:  # created (the local token file) only when asked for
            value = value.replace("{admin_token}", ensure_admin_token(None))
        value = value.replace("{alert_webhook}", os.environ.get(ALERT_WEBHOOK_ENV, ""))
        return value.replace("{data_dir}", str(data_dir())).replace(
            "{mlflow_url}", self.mlflow_url or ""
        )


@dataclass
class StackSummary:
    name: str
    tracking_uri: str
    dashboard_url: str | None
    changed: list[str] = field(default_factory=list)


def stacks_dir() -> Path:
    return Path(os.environ.get(STACKS_DIR_ENV, PROJECT_ROOT / "configs" / "stacks"))


def stack_names() -> list[str]:
    return sorted(path.stem for path in stacks_dir().glob("*.yaml"))


def load_stack_file(name: str) -> StackFile:
    path = stacks_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: no such stack file; stacks are {stack_names()}")
    try:
        stack = StackFile.model_validate(yaml.safe_load(path.read_text()) or {})
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from exc
    if stack.name != name:
        raise ConfigError(f"{path}: name is {stack.name!r}, the file says {name!r}")
    return stack


def _port_busy(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((LOCALHOST, port)) == 0


# -- the MLflow tracking server -----------------------------------------------------------
def mlflow_process(spec: MLflowServerSpec) -> BackgroundProcess:
    stem = f"mlflow-server-{spec.port}"
    return BackgroundProcess(data_dir() / f"{stem}.pid", data_dir() / f"{stem}.log")


def start_mlflow_server(stack: StackFile) -> str | None:
    """Start the stack's MLflow server unless it runs; what changed, or None."""
    spec, url = stack.mlflow_server, stack.mlflow_url
    process = mlflow_process(spec)
    if process.running_pid() is not None and answers(f"{url}/health"):
        return None
    if _port_busy(spec.port):
        raise OperationError(
            f"port {spec.port} is busy and it is not this stack's MLflow server: free it or "
            f"change mlflow_server.port in {stacks_dir() / stack.name}.yaml"
        )
    artifacts = Path(stack.render(spec.artifacts))
    artifacts.mkdir(parents=True, exist_ok=True)
    backend = stack.render(spec.backend_store)
    if backend.startswith("sqlite:///"):
        Path(backend.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend,
        "--serve-artifacts", "--artifacts-destination", str(artifacts),
        "--host", LOCALHOST, "--port", str(spec.port),
        "--workers", "1",
    ]  # fmt: skip
    # no job-runner processes: this server only tracks and serves artifacts
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    pid = process.start(command, lambda: answers(f"{url}/health"), MLFLOW_START_TIMEOUT_S, env)
    return f"started the MLflow server at {url} (pid {pid}, log {process.log_file})"


# -- the ZenML server --------------------------------------------------------------------
def _local_server():
    """ZenML's local server deployment, or None when none was deployed."""
    from zenml.zen_server.deploy.deployer import LocalServerDeployer
    from zenml.zen_server.deploy.exceptions import ServerDeploymentNotFoundError

    try:
        return LocalServerDeployer().get_server()
    except ServerDeploymentNotFoundError:
        return None


def _zenml_server_url() -> str | None:
    """The local server's URL, if one was deployed and answers."""
    server = _local_server()
    url = server.status.url if server is not None and server.status else None
    return url if url and answers(f"{url}/health") else None


def start_zenml_server(stack: StackFile) -> str | None:
    """Start the local ZenML server (dashboard) and connect this client to it."""
    from zenml.enums import ServerProviderType
    from zenml.zen_server.deploy.deployer import LocalServerDeployer
    from zenml.zen_server.deploy.deployment import LocalServerDeploymentConfig

    expected = stack.dashboard_url
    deployer = LocalServerDeployer()
    if _zenml_server_url() == expected:
        if not deployer.is_connected_to_server():
            deployer.connect_to_server()
        return None
    if _port_busy(stack.zenml_server.port):
        raise OperationError(
            f"port {stack.zenml_server.port} is busy and it is not this stack's ZenML server: "
            f"free it or change zenml_server.port in {stacks_dir() / stack.name}.yaml"
        )
    config = LocalServerDeploymentConfig(
        provider=ServerProviderType.DAEMON, port=stack.zenml_server.port, ip_address=LOCALHOST
    )
    deployer.deploy_server(config, timeout=int(ZENML_START_TIMEOUT_S))
    deployer.connect_to_server()
    if not answers(f"{expected}/health"):
        raise OperationError(f"the ZenML server did not come up at {expected}")
    return f"started the ZenML server at {expected} (dashboard)"


def stop_zenml_server() -> str | None:
    from zenml.zen_server.deploy.deployer import LocalServerDeployer

    if _local_server() is None:
        return None
    LocalServerDeployer().remove_server(timeout=int(ZENML_STOP_TIMEOUT_S))
    return "stopped the ZenML server"


# -- images ------------------------------------------------------------------------------
def prepare_images(spec: DockerSpec) -> list[str]:
    """The Docker daemon must answer; the base image and zenloop's image are built once."""
    from ops.images import (
        PROJECT_IMAGE,
        build_project_image,
        docker_available,
        ensure_base_image,
        image_exists,
    )
    from pipelines.docker_settings import base_image

    if not docker_available():
        raise OperationError(
            "no Docker daemon answers: install docker.io and start dockerd "
            "(make test does both), then run this again"
        )
    if not spec.build_images:
        return []
    changed = []
    if not image_exists(base_image()):
        changed.append(f"built base image {ensure_base_image()}")
    if not image_exists(PROJECT_IMAGE):
        changed.append(f"built image {build_project_image()}")
    return changed


# -- registration ------------------------------------------------------------------------
def repository_root() -> Path:
    """The checkout, unless ZENML_REPOSITORY_PATH points ZenML elsewhere (as tests do)."""
    return Path(os.environ.get(ENV_ZENML_REPOSITORY_PATH, PROJECT_ROOT))


def _ensure_secret(
    client: Client, name: str, values: dict[str, SecretValue], stack: StackFile
) -> str | None:
    resolved = {}
    for key, value in values.items():
        resolved[key] = os.environ.get(value.env, stack.render(value.default))
        if resolved[key] is None:
            raise OperationError(f"secret {name}.{key}: set the environment variable {value.env}")
    try:
        existing = client.get_secret(name, allow_partial_name_match=False)
    except KeyError:
        client.create_secret(name, values=resolved)
        return f"created secret {name}"
    if existing.secret_values != resolved:
        client.update_secret(name, add_or_update_values=resolved)
        return f"updated secret {name}"
    return None


def _ensure_component(
    client: Client, kind: StackComponentType, spec: ComponentSpec, stack: StackFile
) -> str | None:
    configuration = {key: stack.render(value) for key, value in spec.configuration.items()}
    try:
        existing = client.get_stack_component(kind, spec.name, allow_name_prefix_match=False)
    except KeyError:
        client.create_stack_component(spec.name, spec.flavor, kind, configuration)
        return f"registered {kind.value} {spec.name}"
    if spec.name == DEFAULT_COMPONENT:
        return None  # ZenML's own defaults are used as they are
    if any(existing.configuration.get(k) != v for k, v in configuration.items()):
        client.update_stack_component(spec.name, kind, configuration=configuration)
        return f"updated {kind.value} {spec.name}"
    return None


def _ensure_flavor(client: Client, spec: FlavorSpec) -> str | None:
    kind = StackComponentType(spec.kind)
    name = source_utils.load(spec.source)().name
    try:
        client.get_flavor_by_name_and_type(name, kind)
        return None
    except KeyError:
        client.create_flavor(spec.source, kind)
        return f"registered {kind.value} flavor {name}"


def _ensure_stack(client: Client, stack: StackFile) -> list[str]:
    changed = [note for spec in stack.flavors if (note := _ensure_flavor(client, spec))]
    changed += [
        note
        for name, values in stack.secrets.items()
        if (note := _ensure_secret(client, name, values, stack))
    ]
    components = {}
    for kind_name, spec in stack.components.items():
        kind = StackComponentType(kind_name)
        if note := _ensure_component(client, kind, spec, stack):
            changed.append(note)
        components[kind] = spec.name
    try:
        registered = client.get_stack(stack.name, allow_name_prefix_match=False)
    except KeyError:
        client.create_stack(stack.name, components, secrets=stack.step_secrets)
        changed.append(f"registered stack {stack.name}")
    else:
        current = {kind: comps[0].name for kind, comps in registered.components.items()}
        wanted = {
            client.get_secret(name, allow_partial_name_match=False).id
            for name in stack.step_secrets
        }
        attached = set(registered.secrets)
        if current != components or wanted != attached:
            client.update_stack(
                stack.name,
                component_updates=components,
                add_secrets=list(wanted - attached),
                remove_secrets=list(attached - wanted),
            )
            changed.append(f"updated stack {stack.name}")
    if client.active_stack_model.name != stack.name:
        client.activate_stack(stack.name)
        changed.append(f"activated stack {stack.name}")
    return changed


def use_stack_tracking() -> str:
    """Point MLflow at the active stack's tracking server or store; returns its URI."""
    tracker = Client().active_stack.experiment_tracker
    if tracker is None:
        raise OperationError(
            "the active stack has no experiment tracker: run `zenloop stack up local`"
        )
    tracker.configure_mlflow()
    return mlflow.get_tracking_uri()


def _initialize_repository() -> list[str]:
    repo_root = repository_root()
    if Client.is_repository_directory(repo_root):
        return []
    Client.initialize(root=repo_root)
    return [f"initialized ZenML repository at {repo_root}"]


# -- the commands ------------------------------------------------------------------------
def stack_register(name: str) -> list[str]:
    """Register and activate stack `name` only: start, build and contact nothing.

    For a stack whose servers are not there yet (a team's `remote` before its cluster), so
    that what it would run can be rendered and read first (ops.pod_manifests).
    """
    stack = load_stack_file(name)
    return _initialize_repository() + _ensure_stack(Client(), stack)


def stack_up(name: str) -> StackSummary:
    """Start what stack `name` needs, register what is missing, activate it."""
    stack = load_stack_file(name)
    changed = _initialize_repository()
    if stack.mlflow_server and (note := start_mlflow_server(stack)):
        changed.append(note)
    if stack.zenml_server and (note := start_zenml_server(stack)):
        changed.append(note)
    if stack.docker:
        changed += prepare_images(stack.docker)
    changed += _ensure_stack(Client(), stack)
    tracking_uri = use_stack_tracking()
    ensure_experiment(stack.experiment.name, stack.render(stack.experiment.artifact_root))
    return StackSummary(stack.name, tracking_uri, stack.dashboard_url, changed)


def stack_down(name: str) -> list[str]:
    """Stop what `up` started; the fallback stack is activated if this one was active."""
    stack = load_stack_file(name)
    stopped = []
    if stack.zenml_server and (note := stop_zenml_server()):
        stopped.append(note)
    if stack.mlflow_server and (pid := mlflow_process(stack.mlflow_server).stop()):
        stopped.append(f"stopped the MLflow server (pid {pid})")
    client = Client()
    if client.active_stack_model.name == stack.name and name != FALLBACK_STACK:
        try:
            client.activate_stack(FALLBACK_STACK)
            stopped.append(f"activated stack {FALLBACK_STACK}")
        except KeyError:
            client.activate_stack(DEFAULT_COMPONENT)
            stopped.append(f"activated stack {DEFAULT_COMPONENT}")
    return stopped


def stack_use(name: str) -> None:
    """Activate a stack that `up` set up; its servers must be running."""
    stack = load_stack_file(name)
    if stack.mlflow_server and not answers(f"{stack.mlflow_url}/health"):
        raise OperationError(
            f"the MLflow server of stack {name} is not running: zenloop stack up {name}"
        )
    if stack.zenml_server and _zenml_server_url() != stack.dashboard_url:
        raise OperationError(
            f"the ZenML server of stack {name} is not running: zenloop stack up {name}"
        )
    try:
        Client().activate_stack(name)
    except KeyError:
        raise OperationError(f"stack {name} is not registered: zenloop stack up {name}") from None


@dataclass
class StackState:
    name: str
    description: str
    registered: bool
    active: bool
    servers: dict[str, bool]


def stack_states() -> list[StackState]:
    client = Client()
    registered = {s.name for s in client.list_stacks(size=100).items}
    active = client.active_stack_model.name
    states = []
    for name in stack_names():
        stack = load_stack_file(name)
        servers = {}
        if stack.zenml_server:
            servers[f"ZenML {stack.dashboard_url}"] = answers(f"{stack.dashboard_url}/health")
        if stack.mlflow_server:
            servers[f"MLflow {stack.mlflow_url}"] = answers(f"{stack.mlflow_url}/health")
        states.append(
            StackState(name, stack.description, name in registered, name == active, servers)
        )
    return states
