"""Container images: the base image, the pinned requirements and zenloop's one image.

Steps (through ZenML's image build), the service and the monitor all run the image that
`docker/Dockerfile` describes; this module builds it outside ZenML too (for compose and for
tests) and keeps `docker/requirements.txt` equal to what this environment runs, so a step in
a container computes the same numbers as on the local stack.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tomllib
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pipelines.docker_settings import (
    DOCKERFILE,
    DOCKERIGNORE,
    base_image,
    build_options,
)
from zenloop.paths import PROJECT_ROOT

logger = logging.getLogger(__name__)

BASE_IMAGE_SCRIPT = PROJECT_ROOT / "scripts" / "base-image.sh"
REQUIREMENTS_FILE = PROJECT_ROOT / "docker" / "requirements.txt"
PYPROJECT = PROJECT_ROOT / "pyproject.toml"
PROJECT_IMAGE = "zenloop:latest"
REQUIREMENTS_HEADER = (
    "# pyproject.toml's dependencies and everything they pull in, pinned to the versions\n"
    "# this project is tested with. Written by `zenloop image requirements`; do not edit.\n"
)
# not needed in an image: the project itself (installed from the source), and xgboost's
# NCCL (300 MB, multi-GPU only); the file is a complete closure, installed with --no-deps
SKIP_DISTRIBUTIONS = {"zenloop", "nvidia-nccl-cu12"}
# what only images need: the PostgreSQL driver for the prediction log of compose and remote,
# and what MLflow's basic-auth app needs for the compose MLflow server (mlflow[auth])
IMAGE_ONLY_REQUIREMENTS = (
    "psycopg==3.3.9",
    "psycopg-binary==3.3.9",
    "Flask-WTF==1.3.0",
    "WTForms==3.3.2",
)


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def image_exists(name: str) -> bool:
    found = subprocess.run(["docker", "image", "inspect", name], capture_output=True)
    return found.returncode == 0


def ensure_base_image() -> str:
    """The base image, built from Debian packages once (or pulled when named publicly)."""
    image = base_image()
    if not image_exists(image):
        logger.info("building base image %s (about 2 minutes)", image)
        subprocess.run([str(BASE_IMAGE_SCRIPT), image], check=True)
    return image


def _closure(roots: list[Requirement]) -> dict[str, str]:
    """name -> installed version for the requirements and all that they require here."""
    pinned: dict[str, str] = {}
    queue = [(req, frozenset(req.extras)) for req in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        req, extras = queue.pop()
        key = (canonicalize_name(req.name), extras)
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            continue  # an optional dependency not installed here: not needed
        pinned[dist.metadata["Name"]] = dist.version
        for text in dist.requires or []:
            child = Requirement(text)
            wanted = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(env) for env in wanted):
                queue.append((child, frozenset(child.extras)))
    return pinned


def pinned_requirements() -> str:
    """pyproject.toml's dependencies with their closure, each at the installed version."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    roots = [Requirement(text) for text in project["dependencies"]]
    pins = _closure(roots)
    lines = [
        f"{name}=={version}"
        for name, version in sorted(pins.items(), key=lambda item: item[0].lower())
        if canonicalize_name(name) not in SKIP_DISTRIBUTIONS
    ]
    return REQUIREMENTS_HEADER + "\n".join([*lines, *IMAGE_ONLY_REQUIREMENTS]) + "\n"


def write_requirements() -> bool:
    """Rewrite docker/requirements.txt when the environment changed; True if it did."""
    text = pinned_requirements()
    if REQUIREMENTS_FILE.is_file() and REQUIREMENTS_FILE.read_text() == text:
        return False
    REQUIREMENTS_FILE.write_text(text)
    return True


def build_project_image(tag: str = PROJECT_IMAGE) -> str:
    """Build docker/Dockerfile from the checkout with the context and options ZenML uses."""
    from zenml.config.docker_settings import DockerBuildOptions
    from zenml.container_engines import get_container_engine
    from zenml.image_builders import BuildContext

    ensure_base_image()
    write_requirements()
    context = BuildContext(root=str(PROJECT_ROOT), dockerignore_file=str(DOCKERIGNORE))
    context.add_file(source=str(DOCKERFILE), destination="Dockerfile")
    options = DockerBuildOptions.model_validate(build_options())
    get_container_engine().build(
        image_name=tag, build_context=context, docker_build_options=options
    )
    logger.info("built image %s", tag)
    return tag
