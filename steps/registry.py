"""What steps share to reach the model registry and the ZenML model versions linked to it."""

from typing import Any
from uuid import UUID

from zenml.client import Client

from zenloop.tracking import ZENML_VERSION_TAG


def configure_mlflow() -> None:
    """Point MLflow at the active stack's registry (for steps without the tracker)."""
    registry = Client().active_stack.model_registry
    if registry is None:
        raise RuntimeError("the active stack has no model registry: run `zenloop stack up local`")
    registry.configure_mlflow()


def version_artifact(name: str, zenml_version_id: str | None, artifact: str) -> Any:
    """An artifact of the ZenML model version that a registry version is tagged with."""
    if zenml_version_id is None:
        raise RuntimeError(f"{name}: the registry version has no {ZENML_VERSION_TAG} tag")
    version = Client().get_model_version(name, UUID(zenml_version_id))
    return version.get_artifact(artifact).load()
