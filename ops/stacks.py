"""Register and activate ZenML stacks by name; idempotent, so running it twice changes nothing."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import mlflow
from zenml.client import Client
from zenml.constants import ENV_ZENML_REPOSITORY_PATH
from zenml.enums import StackComponentType
from zenml.exceptions import EntityExistsError

from zenloop.paths import PROJECT_ROOT, local_artifact_root, local_tracking_uri
from zenloop.tracking import ensure_experiment

logger = logging.getLogger(__name__)

EXPERIMENT_NAME = "zenloop"
LOCAL_STACK = "local"
TRACKER = "zenloop_mlflow_tracker"
REGISTRY = "zenloop_mlflow_registry"
DEFAULT_COMPONENT = "default"


@dataclass
class StackSummary:
    name: str
    tracking_uri: str
    changed: list[str]


def _ensure_component(
    client: Client, name: str, kind: StackComponentType, configuration: dict, changed: list[str]
) -> None:
    try:
        existing = client.get_stack_component(kind, name, allow_name_prefix_match=False)
    except KeyError:
        client.create_stack_component(name, "mlflow", kind, configuration)
        changed.append(f"registered {kind.value} {name}")
        return
    if any(existing.configuration.get(k) != v for k, v in configuration.items()):
        client.update_stack_component(name, kind, configuration=configuration)
        changed.append(f"updated {kind.value} {name}")


def repository_root() -> Path:
    """The checkout, unless ZENML_REPOSITORY_PATH points ZenML elsewhere (as tests do)."""
    return Path(os.environ.get(ENV_ZENML_REPOSITORY_PATH, PROJECT_ROOT))


def stack_up_local() -> StackSummary:
    """`zenml init` if needed, an MLflow tracker and registry on SQLite, and a `local` stack."""
    changed: list[str] = []
    repo_root = repository_root()
    if not Client.is_repository_directory(repo_root):
        Client.initialize(root=repo_root)
        changed.append(f"initialized ZenML repository at {repo_root}")
    client = Client()
    tracking_uri = local_tracking_uri()
    _ensure_component(
        client,
        TRACKER,
        StackComponentType.EXPERIMENT_TRACKER,
        {"tracking_uri": tracking_uri},
        changed,
    )
    _ensure_component(client, REGISTRY, StackComponentType.MODEL_REGISTRY, {}, changed)
    components = {
        StackComponentType.ORCHESTRATOR: DEFAULT_COMPONENT,
        StackComponentType.ARTIFACT_STORE: DEFAULT_COMPONENT,
        StackComponentType.EXPERIMENT_TRACKER: TRACKER,
        StackComponentType.MODEL_REGISTRY: REGISTRY,
    }
    try:
        client.create_stack(LOCAL_STACK, components)
        changed.append(f"registered stack {LOCAL_STACK}")
    except EntityExistsError:
        stack = client.get_stack(LOCAL_STACK, allow_name_prefix_match=False)
        current = {kind: comps[0].name for kind, comps in stack.components.items()}
        if current != components:
            client.update_stack(LOCAL_STACK, component_updates=components)
            changed.append(f"updated stack {LOCAL_STACK}")
    if client.active_stack_model.name != LOCAL_STACK:
        client.activate_stack(LOCAL_STACK)
        changed.append(f"activated stack {LOCAL_STACK}")
    mlflow.set_tracking_uri(tracking_uri)
    ensure_experiment(EXPERIMENT_NAME, local_artifact_root())
    return StackSummary(LOCAL_STACK, tracking_uri, changed)


def use_stack_tracking() -> str:
    """Point MLflow at the active stack's tracking server or store; returns its URI."""
    tracker = Client().active_stack.experiment_tracker
    if tracker is None:
        raise RuntimeError(
            "the active stack has no experiment tracker: run `zenloop stack up local`"
        )
    tracker.configure_mlflow()
    return mlflow.get_tracking_uri()
