"""Docker for the container tests: the daemon, one shared image build, the `docker` stack.

`make test` installs docker.io, starts dockerd and builds the base image; the session
fixture `project_image` builds zenloop's image once (ZenML's own builds of the same
Dockerfile then hit the layer cache), so all container tests share one build.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ops.images import PROJECT_IMAGE, build_project_image, docker_available, ensure_base_image
from tests.support.pipelines import stack_up
from tests.support.stacks import ServerStack, isolated_stack


@pytest.fixture(scope="session")
def project_image() -> str:
    """zenloop's image, built once per session from the checkout."""
    if not docker_available():
        pytest.fail("no Docker daemon: `make test` installs docker.io and starts dockerd")
    started = time.monotonic()
    ensure_base_image()
    build_project_image()
    print(f"project image {PROJECT_IMAGE} ready in {time.monotonic() - started:.0f}s")
    return PROJECT_IMAGE


@contextmanager
def docker_stack(folder: Path) -> Iterator[ServerStack]:
    """`zenloop stack up docker` in stores of its own; `stack down docker` afterwards."""
    stack = isolated_stack(folder, "docker")
    up = stack_up("docker", stack.env)
    assert "activated stack docker" in up.stdout, up.stdout
    try:
        yield stack.handle()
    finally:
        stack.down()
