"""How every pipeline step is packaged when the orchestrator runs steps in containers.

The settings are attached to all three pipelines and ignored by the local orchestrator, so
the pipelines are the same on every stack. ZenML builds `docker/Dockerfile` (the base image,
the requirements of pyproject.toml pinned to this environment's versions, the project
installed) and adds the source root on top; the same Dockerfile builds the service and
monitor images, so a step and the service run the same code and the same library versions.
"""

from __future__ import annotations

import os

from zenml.config import DockerSettings
from zenml.config.docker_settings import DockerBuildConfig

from zenloop.paths import PROJECT_ROOT

BASE_IMAGE_ENV = "ZENLOOP_BASE_IMAGE"  # e.g. python:3.11-slim-bookworm with registry access
LOCAL_BASE_IMAGE = "zenloop-base:bookworm"  # built by scripts/base-image.sh from Debian
DOCKERFILE = PROJECT_ROOT / "docker" / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / "docker" / "dockerignore"
HOST_NETWORK = "host"  # containers talk to the servers on 127.0.0.1, never the bridge


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
