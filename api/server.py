"""Run the service in the foreground or in the background, and stop or inspect it."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import httpx
import uvicorn

from api.app import CONFIG_ENV
from zenloop.admin_token import ensure_admin_token
from zenloop.config import ServingConfig
from zenloop.paths import data_dir
from zenloop.processes import STOP_TIMEOUT_S, BackgroundProcess

logger = logging.getLogger(__name__)

PROCESS_FILES = "serve-{port}"  # .pid and .log: one service per port
START_TIMEOUT_S = 120.0
POLL_S = 0.25


def service_process(config: ServingConfig) -> BackgroundProcess:
    stem = PROCESS_FILES.format(port=config.port)
    return BackgroundProcess(data_dir() / f"{stem}.pid", data_dir() / f"{stem}.log")


def base_url(config: ServingConfig) -> str:
    return f"http://{config.host}:{config.port}"


def serve_foreground(config: ServingConfig) -> None:
    os.environ[CONFIG_ENV] = config.model_dump_json()
    process = service_process(config)
    process.claim()
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
        process.release()


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
    """Start `zenloop serve` detached, with its output in the data folder's serve-<port>.log."""
    args = ["serve"] + (["-c", str(config_path)] if config_path else [])
    return service_process(config).start(
        args, lambda: wait_ready(config, POLL_S, False), START_TIMEOUT_S
    )


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
    return ServiceStatus(service_process(config).running_pid(), url, ready, model)


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
