"""Docker for the container tests: the daemon, one shared image build, the `docker` stack.

`make test` installs docker.io, starts dockerd and builds the base image; the session
fixture `project_image` builds zenloop's image once (ZenML's own builds of the same
Dockerfile then hit the layer cache), so all container tests share one build.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from ops.images import PROJECT_IMAGE, build_project_image, docker_available, ensure_base_image
from tests.pipeline_support import BIN, run_command, stack_up
from tests.serving_support import ADMIN_TOKEN, free_port
from tests.stack_support import ServerStack

ROOT = Path(__file__).resolve().parents[1]


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


def _stack_files(folder: Path) -> tuple[Path, int, int]:
    """The shipped stack files, the docker one moved to free ports."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "configs" / "stacks").glob("*.yaml"):
        (folder / path.name).write_text(path.read_text())
    docker = yaml.safe_load((folder / "docker.yaml").read_text())
    zenml_port, mlflow_port = free_port(), free_port()
    docker["zenml_server"]["port"], docker["mlflow_server"]["port"] = zenml_port, mlflow_port
    (folder / "docker.yaml").write_text(yaml.safe_dump(docker))
    return folder, zenml_port, mlflow_port


@contextmanager
def docker_stack(folder: Path) -> Iterator[ServerStack]:
    """`zenloop stack up docker` in stores of its own; `stack down docker` afterwards."""
    stacks, zenml_port, mlflow_port = _stack_files(folder / "stacks")
    (folder / "repo").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "ZENML_CONFIG_PATH": str(folder / "zenml"),
        "ZENML_REPOSITORY_PATH": str(folder / "repo"),
        "ZENLOOP_DATA_DIR": str(folder / "data"),
        "ZENLOOP_STACKS_DIR": str(stacks),
        "ZENLOOP_ADMIN_TOKEN": ADMIN_TOKEN,
        "ZENML_AUTO_OPEN_DASHBOARD": "false",
    }
    env.pop("MLFLOW_TRACKING_URI", None)  # the stack decides
    up = stack_up("docker", env)
    assert "activated stack docker" in up.stdout, up.stdout
    try:
        yield ServerStack(env, f"http://127.0.0.1:{zenml_port}", f"http://127.0.0.1:{mlflow_port}")
    finally:
        down = run_command(str(BIN / "zenloop"), "stack", "down", "docker", env=env, check=False)
        assert down.returncode == 0, down.stderr
        for port in (zenml_port, mlflow_port):
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
            except httpx.HTTPError:
                continue
            raise AssertionError(f"something still answers on port {port} after stack down")
