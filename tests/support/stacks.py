"""The `server` stack for tests: a real ZenML server and MLflow server in their own stores.

Its processes get their own ZenML config, repository and data folder (and free ports),
so the rest of the session keeps running on the local stack's stores.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from tests.support.pipelines import BIN, run_command, stack_up
from tests.support.serving import ADMIN_TOKEN, free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServerStack:
    env: dict[str, str]
    dashboard: str
    mlflow: str

    def zenml_api(self, path: str, **params) -> dict:
        """GET on the ZenML server's REST API (the local server runs without auth)."""
        response = httpx.get(f"{self.dashboard}/api/v1{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def mlflow_api(self, path: str, **params) -> dict:
        """GET on the MLflow server's REST API."""
        response = httpx.get(f"{self.mlflow}/api/2.0/mlflow{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()


@dataclass
class IsolatedStack:
    """Stack `name` in stores of its own: env for its processes, its servers' free ports."""

    name: str
    env: dict[str, str]
    zenml_port: int
    mlflow_port: int

    def handle(self) -> ServerStack:
        return ServerStack(
            self.env, f"http://127.0.0.1:{self.zenml_port}", f"http://127.0.0.1:{self.mlflow_port}"
        )

    def down(self) -> None:
        """`zenloop stack down`, then nothing may answer on the stack's ports."""
        down = run_command(
            str(BIN / "zenloop"), "stack", "down", self.name, env=self.env, check=False
        )
        assert down.returncode == 0, down.stderr
        for port in (self.zenml_port, self.mlflow_port):
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
            except httpx.HTTPError:
                continue
            raise AssertionError(f"something still answers on port {port} after stack down")


def _server_ports(content: dict) -> tuple[int, int] | None:
    if "zenml_server" not in content or "mlflow_server" not in content:
        return None
    return content["zenml_server"]["port"], content["mlflow_server"]["port"]


def isolated_stack(folder: Path, name: str) -> IsolatedStack:
    """The shipped stack files and stores under `folder`: stack `name`'s servers move to free
    ports, and so do those of every stack that shares them (`server` and `docker` do)."""
    stacks = folder / "stacks"
    stacks.mkdir(parents=True, exist_ok=True)
    files = {
        path.name: yaml.safe_load(path.read_text())
        for path in (ROOT / "configs" / "stacks").glob("*.yaml")
    }
    servers = _server_ports(files[f"{name}.yaml"])
    zenml_port, mlflow_port = free_port(), free_port()
    for file_name, content in files.items():
        if _server_ports(content) == servers:
            content["zenml_server"]["port"] = zenml_port
            content["mlflow_server"]["port"] = mlflow_port
        (stacks / file_name).write_text(yaml.safe_dump(content))
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
    return IsolatedStack(name, env, zenml_port, mlflow_port)


@contextmanager
def server_stack(folder: Path) -> Iterator[ServerStack]:
    stack = isolated_stack(folder, "server")
    first = stack_up("server", stack.env)
    assert (
        "started the ZenML server" in first.stdout and "started the MLflow server" in first.stdout
    )
    try:
        again = stack_up("server", stack.env)
        assert "nothing to change" in again.stdout, "stack up must be idempotent"
        yield stack.handle()
    finally:
        stack.down()
