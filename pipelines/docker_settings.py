"""How every pipeline step is packaged when the orchestrator runs steps in containers.

The settings are attached to every pipeline, so the pipelines are the same on every stack
(`zenml pipeline run` included); zenloop's own runs drop them on a stack that runs no
containers (`for_active_stack`), where ZenML would only warn that nothing uses them.

ZenML builds `docker/Dockerfile` (the base image, the requirements of pyproject.toml pinned
to this environment's versions, the project installed) and adds the source root on top;
the same Dockerfile builds the service and monitor images, so a step and the service run
the same code and the same library versions.
"""

from __future__ import annotations

import os

from zenml.client import Client
from zenml.config import DockerSettings
from zenml.config.constants import DOCKER_SETTINGS_KEY
from zenml.config.docker_settings import DockerBuildConfig
from zenml.enums import StackComponentType
from zenml.models import StackResponse
from zenml.pipelines.pipeline_definition import Pipeline

from zenloop.paths import PROJECT_ROOT

BASE_IMAGE_ENV = "ZENLOOP_BASE_IMAGE"  # e.g. python:3.11-slim-bookworm with registry access
LOCAL_BASE_IMAGE = "zenloop-base:bookworm"  # built by scripts/base-image.sh from Debian
DOCKERFILE = PROJECT_ROOT / "docker" / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / "docker" / "dockerignore"
HOST_NETWORK = "host"  # containers talk to the servers on 127.0.0.1, never the bridge
LOCAL_FLAVOR = "local"  # an orchestrator or deployer of this flavor runs no container


def base_image() -> str:
    return os.environ.get(BASE_IMAGE_ENV, LOCAL_BASE_IMAGE)


def build_options() -> dict[str, object]:
    """docker-py build options: the host network reaches the package index (and its CA)."""
    return {
        "network_mode": HOST_NETWORK,
        "build_args": {"BASE_IMAGE": base_image()},
        "rm": True,  # no intermediate containers left behind
    }


def docker_settings(deployed: bool = False) -> DockerSettings:
    """How step images are built: the project image, on the host network.

    How containers run (host network, the data folder mounted) belongs to the stack: the
    Docker orchestrator's `run_args` in configs/stacks/docker.yaml. Only a pipeline that is
    `deployed` (the inference pipeline) needs the deployer's image: a containerised
    deployer in the stack would otherwise build a second image for every pipeline run.
    """
    return DockerSettings(
        dockerfile=str(DOCKERFILE),
        build_context_root=str(PROJECT_ROOT),
        parent_image_build_config=DockerBuildConfig(
            build_options=build_options(), dockerignore=str(DOCKERIGNORE)
        ),
        build_config=DockerBuildConfig(
            build_options=build_options(), dockerignore=str(DOCKERIGNORE)
        ),
        # the stack's integration packages on top of the pins: a no-op on `docker` (mlflow's
        # are met), kubernetes, s3fs and boto3 on `remote`
        install_stack_requirements=True,
        install_deployment_requirements=deployed,
        allow_including_files_in_images=True,
        allow_download_from_code_repository=False,
        allow_download_from_artifact_store=False,
    )


def runs_containers(stack: StackResponse) -> bool:
    """Whether a component of `stack` runs steps or a deployment in containers.

    The same test as ZenML's compiler (`_validate_docker_settings_usage`): a non-local
    orchestrator or deployer, or any step operator. Where it is false ZenML logs ZML002
    ("You are specifying docker settings but no component in your stack makes use of
    them") for settings it then ignores.
    """
    components = stack.components
    orchestrators = components.get(StackComponentType.ORCHESTRATOR, [])
    deployers = components.get(StackComponentType.DEPLOYER, [])
    return (
        any(c.flavor_name != LOCAL_FLAVOR for c in orchestrators)
        or any(c.flavor_name != LOCAL_FLAVOR for c in deployers)
        or bool(components.get(StackComponentType.STEP_OPERATOR))
    )


def for_active_stack(pipeline: Pipeline) -> Pipeline:
    """`pipeline` as the active stack uses it: a copy without the docker settings when
    nothing on the stack runs containers (no ZML002 warning on every run), else as is.

    Call it before `with_options(config_path=...)`: a copy reconfigured after its run
    config was read would warn that the config's settings changed.
    """
    if runs_containers(Client().active_stack_model):
        return pipeline
    stripped = pipeline.copy()
    settings = dict(stripped.configuration.settings)
    settings.pop(DOCKER_SETTINGS_KEY, None)
    stripped.configure(settings=settings, merge=False)
    return stripped
