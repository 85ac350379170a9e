"""Deployment steps: check a registered version on its holdout, then hand it to the service.

Nothing here depends on the machine the step runs on: the version comes from the run's
model version (or the registry), the holdout from the ZenML store, and the service is
reached over HTTP at the configured URL.
"""

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import pandas as pd
from mlflow.tracking import MlflowClient
from zenml import log_metadata, step

import materializers  # noqa: F401
from api.client import ServiceUnavailable, hand_over
from steps.hooks import record_failure
from steps.registry import LinkedVersion, linked_version
from zenloop.config import DeploymentConfig
from zenloop.deployment import (
    VALIDATED_TAG,
    DeploymentCheck,
    DeploymentRecord,
    check_deployment,
)
from zenloop.tracking import load_bundle

HOLDOUT_ARTIFACTS = ("test", "reference_data")


def holdout_for(version: LinkedVersion) -> pd.DataFrame:
    """The held-out test split of the training run that produced this version."""
    for artifact in HOLDOUT_ARTIFACTS:
        try:
            return version.artifact(artifact)
        except (KeyError, AttributeError):
            continue
    raise RuntimeError(
        f"{version.name}: ZenML model version {version.zenml_version_id} has no holdout artifact"
    )


@step(enable_cache=False, on_failure=record_failure)
def validate_deployment(deploy: DeploymentConfig) -> Annotated[DeploymentCheck, "deployment_check"]:
    version = linked_version(deploy.model_name, deploy.alias, deploy.version)
    bundle = load_bundle(f"models:/{version.name}/{version.registry_version}")
    check = check_deployment(
        version.name, version.registry_version, bundle, holdout_for(version), deploy
    )
    if check.passed:  # the service hot-reloads only versions carrying this tag
        stamp = datetime.now(UTC).isoformat()
        MlflowClient().set_model_version_tag(
            version.name, version.registry_version, VALIDATED_TAG, stamp
        )
    log_metadata({"deployment_check": check.model_dump(mode="json")})
    log_metadata(
        {"deployment_check": check.model_dump(mode="json")},
        model_version_id=UUID(version.zenml_version_id),
    )
    return check


@step(enable_cache=False, on_failure=record_failure)
def deploy_to_service(
    check: DeploymentCheck, deploy: DeploymentConfig
) -> Annotated[DeploymentRecord, "deployment"]:
    if not check.passed:
        raise RuntimeError(
            f"{check.model_name} v{check.version} was not deployed; the live model is untouched: "
            + "; ".join(check.reasons)
        )
    alias = None if deploy.version is not None else deploy.alias
    try:
        previous = hand_over(
            deploy.service_url, check.model_name, check.version, alias, deploy.handover_timeout_s
        )
        action = "reloaded by the running service"
    except ServiceUnavailable as exc:  # it follows the validated alias once it starts
        previous, action = None, f"validated, awaiting a service ({exc})"
    record = DeploymentRecord(
        model_name=check.model_name,
        version=check.version,
        previous_version=previous,
        action=action,
        url=deploy.service_url,
        deployed_at=datetime.now(UTC),
    )
    version = linked_version(check.model_name, deploy.alias, check.version)
    log_metadata(
        {"deployment": record.model_dump(mode="json")},
        model_version_id=UUID(version.zenml_version_id),
    )
    log_metadata({"deployment": record.model_dump(mode="json")})
    return record
