"""The Kubernetes resources ZenML's deployer would apply for the prediction service,
rendered offline.

On the `remote` stack the service is the inference pipeline deployed by ZenML's
Kubernetes deployer, which renders a Namespace, a Secret, a Deployment and a Service and
applies them in the cluster. Here the same deployer code renders them on the client: a
real snapshot of the inference pipeline with the service's run config (as `zenloop serve
--detach` deploys it), a deployment record that is never provisioned, ZenML's environment
and secrets for it, and the deployer's own `_prepare_deployment_resources`. Nothing is
applied and no cluster is needed. The Secret's values (the deployment's ZenML token, the
stack's secrets) are not written: only their keys are.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import yaml
from zenml.client import Client
from zenml.constants import DEPLOYER_DOCKER_IMAGE_KEY, ORCHESTRATOR_DOCKER_IMAGE_KEY
from zenml.enums import StoreType
from zenml.models import DeploymentRequest, DeploymentUpdate

from api.settings import ServingConfig
from ops import service
from ops.pod_manifests import pushed_image_build
from zenloop.errors import UserError

KUBERNETES_FLAVOR = "kubernetes"
SNAPSHOT_NAME_SUFFIX = "-manifests"
NOT_WRITTEN = "bm90LXdyaXR0ZW4="  # base64 of "not-written": a Secret value left out


def _require_kubernetes_deployer() -> Any:
    client = Client()
    if client.zen_store.type != StoreType.REST:
        raise UserError(
            "the service's pods reach ZenML over HTTP, and the active ZenML store is a local "
            "database: connect to the team's ZenML server first (zenml login URL)"
        )
    deployer = client.active_stack.deployer
    if deployer is None or deployer.flavor != KUBERNETES_FLAVOR:
        found = "none" if deployer is None else repr(deployer.flavor)
        raise UserError(
            f"the active stack's deployer is {found}: the service's resources are rendered "
            f"for a {KUBERNETES_FLAVOR} deployer (zenloop stack up remote)"
        )
    return deployer


def render(config: ServingConfig, image: str) -> list[dict[str, Any]]:
    """The resources for the service of `config`, whose pods run `image`."""
    from zenml.orchestrators.utils import get_config_environment_vars

    from pipelines.inference import inference_pipeline

    deployer = _require_kubernetes_deployer()
    name = service.deployment_name(config)
    build = pushed_image_build(image, ORCHESTRATOR_DOCKER_IMAGE_KEY, DEPLOYER_DOCKER_IMAGE_KEY)
    path = service.write_run_config(config)
    configured = inference_pipeline.with_options(build=build, config_path=str(path))
    snapshot = configured.create_snapshot(name=f"{name}{SNAPSHOT_NAME_SUFFIX}", replace=True)
    client = Client()
    deployment = _record(client, name, snapshot.id, deployer.id)
    environment, secrets = get_config_environment_vars(deployment_id=deployment.id)
    deployer._applier = _SerializeOnly()
    _, resources = deployer._prepare_deployment_resources(deployment, environment, secrets)
    return [_without_secret_values(resource) for resource in resources]


class _SerializeOnly:
    """What the deployer's renderer uses of its applier: the Kubernetes client's serializer.
    ZenML's own applier opens a discovery client when it is created, which asks the
    cluster for its version; here there is no cluster."""

    def __init__(self) -> None:
        from kubernetes.client import ApiClient

        self.api_client = ApiClient()  # configured with no cluster: it only serializes


def _record(client: Client, name: str, snapshot_id: UUID, deployer_id: UUID) -> Any:
    """The deployment as ZenML records it before provisioning (never provisioned here)."""
    rendered = f"{name}{SNAPSHOT_NAME_SUFFIX}"
    try:
        existing = client.get_deployment(rendered)
    except KeyError:
        request = DeploymentRequest(
            name=rendered,
            snapshot_id=snapshot_id,
            deployer_id=deployer_id,
            project=client.active_project.id,
        )
        return client.zen_store.create_deployment(request)
    update = DeploymentUpdate(snapshot_id=snapshot_id)
    return client.zen_store.update_deployment(existing.id, update)


def _without_secret_values(resource: dict[str, Any]) -> dict[str, Any]:
    if resource.get("kind") != "Secret":
        return resource
    for field in ("data", "stringData"):
        if resource.get(field):
            resource[field] = dict.fromkeys(resource[field], NOT_WRITTEN)
    return resource


def write(resources: list[dict[str, Any]]) -> str:
    """One YAML stream, as `kubectl apply -f` reads it."""
    return yaml.safe_dump_all(resources, sort_keys=False)
