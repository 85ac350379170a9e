"""Deployment steps: check a registered version on its holdout, then hand it to the service."""

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import pandas as pd
from mlflow.tracking import MlflowClient
from zenml import log_metadata, step

import materializers  # noqa: F401
from api.client import ServiceUnavailable, base_url, hand_over
from steps.registry import configure_mlflow, version_artifact
from zenloop.config import DeploymentConfig, load_serving_config
from zenloop.deployment import (
    VALIDATED_TAG,
    DeploymentCheck,
    DeploymentRecord,
    check_deployment,
)
from zenloop.paths import project_path
from zenloop.tracking import ZENML_VERSION_TAG, load_bundle

HOLDOUT_ARTIFACTS = ("test", "reference_data")


def _registered(deploy: DeploymentConfig):
    client = MlflowClient()
    if deploy.version is not None:
        return client.get_model_version(deploy.model_name, deploy.version)
    return client.get_model_version_by_alias(deploy.model_name, deploy.alias)


def holdout_for(name: str, zenml_version_id: str | None) -> pd.DataFrame:
    """The held-out test split of the training run that produced this version."""
    for artifact in HOLDOUT_ARTIFACTS:
        try:
            return version_artifact(name, zenml_version_id, artifact)
        except (KeyError, AttributeError):
            continue
    raise RuntimeError(f"{name}: ZenML model version {zenml_version_id} has no holdout artifact")


@step(enable_cache=False)
def validate_deployment(deploy: DeploymentConfig) -> Annotated[DeploymentCheck, "deployment_check"]:
    configure_mlflow()
    registered = _registered(deploy)
    version = str(registered.version)
    bundle = load_bundle(f"models:/{deploy.model_name}/{version}")
    holdout = holdout_for(deploy.model_name, (registered.tags or {}).get(ZENML_VERSION_TAG))
    check = check_deployment(deploy.model_name, version, bundle, holdout, deploy)
    if check.passed:  # the service hot-reloads only versions carrying this tag
        stamp = datetime.now(UTC).isoformat()
        MlflowClient().set_model_version_tag(deploy.model_name, version, VALIDATED_TAG, stamp)
    log_metadata({"deployment_check": check.model_dump(mode="json")})
    return check


@step(enable_cache=False)
def deploy_to_service(
    check: DeploymentCheck, deploy: DeploymentConfig
) -> Annotated[DeploymentRecord, "deployment"]:
    if not check.passed:
        raise RuntimeError(
            f"{check.model_name} v{check.version} was not deployed; the live model is untouched: "
            + "; ".join(check.reasons)
        )
    serving = load_serving_config(project_path(deploy.serving_config))
    alias = None if deploy.version is not None else deploy.alias
    try:
        previous = hand_over(serving, check.version, alias)
        action = "reloaded by the running service"
    except ServiceUnavailable as exc:  # it follows the validated alias once it starts
        previous, action = None, f"validated, awaiting a service ({exc})"
    record = DeploymentRecord(
        model_name=check.model_name,
        version=check.version,
        previous_version=previous,
        action=action,
        url=base_url(serving),
        deployed_at=datetime.now(UTC),
    )
    zenml_version = (
        MlflowClient()
        .get_model_version(check.model_name, check.version)
        .tags.get(ZENML_VERSION_TAG)
    )
    if zenml_version:
        log_metadata(
            {"deployment": record.model_dump(mode="json")}, model_version_id=UUID(zenml_version)
        )
    log_metadata({"deployment": record.model_dump(mode="json")})
    return record
