"""Deployment: check the champion (or a given version) on its holdout, then make it live."""

from zenml import pipeline

from pipelines.docker_settings import docker_settings
from steps.deployment import deploy_to_service, validate_deployment
from zenloop.config import DeploymentConfig


@pipeline(
    enable_cache=False,
    settings={"docker": docker_settings()},  # used where steps run in containers
)
def deployment_pipeline(deploy: DeploymentConfig | None = None) -> None:
    # the service's address, read here on the client where its config is
    deploy = (deploy or DeploymentConfig()).with_service()
    check = validate_deployment(deploy)
    deploy_to_service(check, deploy)
