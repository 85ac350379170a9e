"""Running the real `zenloop` and `zenml` commands from tests."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent
RUN_TIMEOUT = 600
MODEL = "zenloop"


def run_command(
    *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """A real command, in this session's stores unless `env` points elsewhere."""
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env or os.environ.copy()
    )
    if check:
        assert result.returncode == 0, (
            f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        )
    return result


def run_config(path: Path, config: dict, model: str = MODEL, key: str = "config") -> Path:
    """A ZenML run config with `config` as parameters.<key>."""
    content = {
        "model": {"name": model},
        "settings": {"experiment_tracker": {"experiment_name": "zenloop"}},
        "parameters": {key: config},
    }
    if key != "config":  # deployment and monitoring act on the model's production version
        content = {"model": {"name": model, "version": "production"}, "parameters": {key: config}}
    path.write_text(yaml.safe_dump(content))
    return path


def stack_up(name: str = "local", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run_command(str(BIN / "zenloop"), "stack", "up", name, env=env)
