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

from tests.pipeline_support import BIN, run_command, stack_up
from tests.serving_support import ADMIN_TOKEN, free_port

ROOT = Path(__file__).resolve().parents[1]


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


def _stack_files(folder: Path) -> tuple[Path, int, int]:
    """The shipped stack files, the server one moved to free ports."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "configs" / "stacks").glob("*.yaml"):
        (folder / path.name).write_text(path.read_text())
    server = yaml.safe_load((folder / "server.yaml").read_text())
    zenml_port, mlflow_port = free_port(), free_port()
    server["zenml_server"]["port"], server["mlflow_server"]["port"] = zenml_port, mlflow_port
    (folder / "server.yaml").write_text(yaml.safe_dump(server))
    return folder, zenml_port, mlflow_port


@contextmanager
def server_stack(folder: Path) -> Iterator[ServerStack]:
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
    first = stack_up("server", env)
    assert (
        "started the ZenML server" in first.stdout and "started the MLflow server" in first.stdout
    )
    try:
        again = stack_up("server", env)
        assert "nothing to change" in again.stdout, "stack up must be idempotent"
        yield ServerStack(env, f"http://127.0.0.1:{zenml_port}", f"http://127.0.0.1:{mlflow_port}")
    finally:
        down = run_command(str(BIN / "zenloop"), "stack", "down", "server", env=env, check=False)
        assert down.returncode == 0, down.stderr
        for port in (zenml_port, mlflow_port):
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
            except httpx.HTTPError:
                continue
            raise AssertionError(f"something still answers on port {port} after stack down")
