"""Run the service in the foreground or in the background, and stop or inspect it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from api.app import CONFIG_ENV
from zenloop.admin_token import ensure_admin_token
from zenloop.config import ServingConfig
from zenloop.paths import data_dir

logger = logging.getLogger(__name__)

PID_FILE = "serve.pid"
LOG_FILE = "serve.log"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
POLL_S = 0.25


def pid_path() -> Path:
    return data_dir() / PID_FILE


def log_path() -> Path:
    return data_dir() / LOG_FILE


def base_url(config: ServingConfig) -> str:
    return f"http://{config.host}:{config.port}"


def running_pid() -> int | None:
    """The pid in the pid file if that process is alive; a stale file is removed."""
    try:
        pid = int(pid_path().read_text().strip())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError):
        return None
    except ProcessLookupError:
        pid_path().unlink(missing_ok=True)
        return None


def serve_foreground(config: ServingConfig) -> None:
    os.environ[CONFIG_ENV] = config.model_dump_json()
    pid_path().write_text(str(os.getpid()))
    try:
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=config.host,
            port=config.port,
            workers=config.workers,
            access_log=False,
            log_level="info",
            timeout_graceful_shutdown=int(STOP_TIMEOUT_S),
        )
    finally:
        if running_pid() == os.getpid():
            pid_path().unlink(missing_ok=True)


def wait_ready(config: ServingConfig, timeout: float, require_model: bool = True) -> bool:
    url = base_url(config) + ("/ready" if require_model else "/health")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(POLL_S)
    return False


def serve_background(config_path: str | None, config: ServingConfig) -> int:
    """Start `zenloop serve` detached, with its output in the data folder's serve.log."""
    if (pid := running_pid()) is not None:
        raise RuntimeError(
            f"a service is already running (pid {pid}); stop it with zenloop serve --stop"
        )
    command = [sys.executable, "-m", "zenloop.cli", "serve"]
    if config_path:
        command += ["-c", str(config_path)]
    with log_path().open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    if not wait_ready(config, START_TIMEOUT_S, require_model=False):
        process.terminate()
        raise RuntimeError(
            f"the service did not start within {START_TIMEOUT_S:.0f}s; see {log_path()}"
        )
    return process.pid


def stop() -> int | None:
    """SIGTERM, then wait: uvicorn shuts down gracefully and the log queue is drained."""
    pid = running_pid()
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(POLL_S)
    else:
        raise RuntimeError(f"service pid {pid} did not stop within {STOP_TIMEOUT_S:.0f}s")
    pid_path().unlink(missing_ok=True)
    return pid


@dataclass
class ServiceStatus:
    pid: int | None
    url: str
    ready: bool
    model: dict | None


def status(config: ServingConfig) -> ServiceStatus:
    url = base_url(config)
    try:
        info = httpx.get(url + "/model-info", timeout=2.0)
        model = info.json() if info.status_code == 200 else None
        ready = model is not None
    except httpx.HTTPError:
        model, ready = None, False
    return ServiceStatus(running_pid(), url, ready, model)


def hand_over(
    config_path: str | None, config: ServingConfig, version: str, alias: str | None, start: bool
) -> tuple[str, str | None]:
    """Make the service serve `version`: reload a running one, or start one in the background.

    With `alias`, the service loads the alias (and keeps following it); it must resolve to
    `version`. Returns the action taken and the version served before.
    """
    url = base_url(config)
    token = ensure_admin_token(config.admin_token)
    headers = {"Authorization": f"Bearer {token}"}
    previous, action = None, "reloaded"
    try:
        httpx.get(url + "/health", timeout=2.0).raise_for_status()
        info = httpx.get(url + "/model-info", timeout=5.0)
        previous = info.json()["version"] if info.status_code == 200 else None
    except httpx.HTTPError:
        if not start:
            raise RuntimeError(f"no service answers at {url} and start_service is false") from None
        serve_background(config_path, config)
        action = "started"
    params = {"alias": alias} if alias else {"version": version}
    response = httpx.post(url + "/models/load", params=params, headers=headers, timeout=120.0)
    if response.status_code != 200:
        raise RuntimeError(
            f"the service at {url} refused the model: {response.status_code} {response.text}"
        )
    served = response.json()["model_version"]
    if served != version:
        raise RuntimeError(
            f"the service serves v{served}, not v{version}: the alias moved meanwhile"
        )
    return action, previous
