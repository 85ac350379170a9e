"""What steps share to reach the model registry and the ZenML model versions linked to it."""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from mlflow.tracking import MlflowClient
from zenml import get_step_context
from zenml.client import Client
from zenml.exceptions import StepContextError

from zenloop.tracking import ZENML_VERSION_TAG

PROMOTION_METADATA = "promotion"  # the training run's decision, on its model version


def tracking_store() -> str:
    """The active stack's MLflow store, part of the cache key of the steps that log to it.

    A step's MLflow runs and logged models live in the tracker it ran with: on another
    stack's tracker (e.g. `server` after `local`, in the same ZenML store) a cached result
    would hand the promotion a logged model that tracker does not have, so it runs again.
    """
    tracker = Client().active_stack.experiment_tracker
    return "no experiment tracker" if tracker is None else tracker.get_tracking_uri()


def configure_mlflow() -> None:
    """Point MLflow at the active stack's registry (for steps without the tracker)."""
    registry = Client().active_stack.model_registry
    if registry is None:
        raise RuntimeError("the active stack has no model registry: run `zenloop stack up local`")
    registry.configure_mlflow()


@dataclass(frozen=True)
class LinkedVersion:
    """A registry version and the ZenML model version it was trained as."""

    name: str
    registry_version: str
    zenml_version_id: str

    def artifact(self, artifact: str) -> Any:
        """An artifact of the ZenML model version (its test split, reference sample, …)."""
        version = Client().get_model_version(self.name, UUID(self.zenml_version_id))
        return version.get_artifact(artifact).load()


def _run_model():
    """The run's ZenML model version (`model:` in the run config), or None."""
    try:
        return get_step_context().model
    except StepContextError:
        return None


def linked_version(name: str, alias: str, pinned: str | None = None) -> LinkedVersion:
    """The version a deployment or monitoring run acts on; MLflow is pointed at the stack's
    registry (each step may be a process of its own, e.g. in a container).

    A pinned registry version wins. Otherwise, with `model:` in the run config (the Model
    Control Plane: e.g. `{name: zenloop, version: production}`), the run's model version
    decides and the run is listed under it; without it, the registry alias decides.
    """
    configure_mlflow()
    client = MlflowClient()
    model = _run_model() if pinned is None else None
    if model is not None:
        promotion = model.run_metadata.get(PROMOTION_METADATA) or {}
        registered = promotion.get("registered_version")
        if registered is None:
            raise RuntimeError(
                f"ZenML model {model.name} version {model.number} ({model.stage}) was never "
                "registered: its training run promoted nothing"
            )
        return LinkedVersion(model.name, str(registered), str(model.id))
    if pinned is not None:
        registered = client.get_model_version(name, pinned)
    else:
        registered = client.get_model_version_by_alias(name, alias)
    zenml_id = (registered.tags or {}).get(ZENML_VERSION_TAG)
    if zenml_id is None:
        raise RuntimeError(f"{name} v{registered.version} has no {ZENML_VERSION_TAG} tag")
    return LinkedVersion(name, str(registered.version), zenml_id)
