"""Run the prediction service in the foreground or in the background; stop or inspect it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from api.app import CONFIG_ENV
from api.settings import ServingConfig
from api.shared_selection import SERVICE_FILES, SelectionBoard
from ops import probes
from ops.processes import STOP_TIMEOUT_S, BackgroundProcess, zenloop_command
from ops.stacks import use_stack_tracking
from zenloop.paths import data_dir
from zenloop.waiting import poll_until

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0


def service_process(config: ServingConfig) -> BackgroundProcess:
    stem = SERVICE_FILES.format(port=config.port)  # .pid and .log
    return BackgroundProcess(data_dir() / f"{stem}.pid", data_dir() / f"{stem}.log")


def running_services() -> list[BackgroundProcess]:
    """Every service started from this data folder, whatever config it was started with."""
    return BackgroundProcess.running_in(data_dir(), SERVICE_FILES)


def serve_foreground(config: ServingConfig) -> None:
    """Serve in this process; the registry is the active stack's unless the config names one."""
    if config.tracking_uri is None:
        config = config.model_copy(update={"tracking_uri": use_stack_tracking()})
    os.environ[CONFIG_ENV] = config.model_dump_json()
    process = service_process(config)
    process.claim()
    SelectionBoard.of(config).clear()  # a fresh start serves what its config says
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


def answers(config: ServingConfig, path: str = "/health") -> bool:
    return probes.answers(config.url + path)


def wait_ready(config: ServingConfig, timeout: float, require_model: bool = True) -> bool:
    return poll_until(lambda: answers(config, "/ready" if require_model else "/health"), timeout)


def serve_background(config_path: Path | None, config: ServingConfig) -> int:
    """Start `zenloop serve` detached, with its output in the data folder's serve-<port>.log."""
    args = ["serve", "--port", str(config.port)] + (["-c", str(config_path)] if config_path else [])
    return service_process(config).start(
        zenloop_command(*args), lambda: answers(config), START_TIMEOUT_S
    )


def ensure_running(config_path: Path | None, config: ServingConfig) -> int | None:
    """Start the service unless one answers already; the pid when this call started it."""
    if answers(config):
        return None
    return serve_background(config_path, config)


@dataclass
class ServiceStatus:
    pid: int | None
    url: str
    ready: bool
    model: dict | None


def status(config: ServingConfig) -> ServiceStatus:
    url = config.url
    try:
        info = httpx.get(url + "/model-info", timeout=probes.PROBE_TIMEOUT_S)
        model = info.json() if info.status_code == 200 else None
    except httpx.HTTPError:
        model = None
    return ServiceStatus(service_process(config).running_pid(), url, model is not None, model)
