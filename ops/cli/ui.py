"""`zenloop ui`: the operations page (ui/), in the foreground or in the background.

The page sits below the operations layer, so this command fills in what only this
layer knows: the active stack's name, its MLflow tracking URI and its server URLs.
"""

from __future__ import annotations

from pathlib import Path

import click

from ops.cli.options import CONFIGS, config_option, given, port_option
from ops.cli.serve import stop_all
from ops.probes import answers
from ops.processes import BackgroundProcess, zenloop_command
from zenloop.paths import data_dir

UI_CONFIG = CONFIGS / "ui.yaml"
PROCESS_FILES = "ui-{port}"  # .pid and .log in the data folder: one page per port
START_TIMEOUT_S = 120.0
HEALTH_PATH = "/api/health"


def page_url(config) -> str:
    return f"http://{config.host}:{config.port}"


def page_process(config) -> BackgroundProcess:
    stem = PROCESS_FILES.format(port=config.port)
    return BackgroundProcess(data_dir() / f"{stem}.pid", data_dir() / f"{stem}.log")


def page_config(config_path: Path | None, port: int | None = None):
    """The page's config (with `port` instead of its own, when given)."""
    from ui.config import load_ui_config

    config = load_ui_config(config_path)
    return config if port is None else config.model_copy(update={"port": port})


def load_page_config(config_path: Path | None, port: int | None = None):
    """The page's config, with the active stack's tracking URI and links filled in."""
    from zenml.client import Client

    from ops.stacks import load_stack_file, stack_names, use_stack_tracking

    config = page_config(config_path, port)
    stack = Client().active_stack_model.name
    updates: dict[str, str | None] = {"stack": config.stack or stack}
    if config.tracking_uri is None:
        updates["tracking_uri"] = use_stack_tracking()
    if stack in stack_names():
        stack_file = load_stack_file(stack)
        updates["mlflow_url"] = config.mlflow_url or stack_file.mlflow_url
        updates["zenml_url"] = config.zenml_url or stack_file.dashboard_url
    return config.model_copy(update=updates)


def start_background(config_path: Path | None, port: int | None = None) -> int:
    """Start `zenloop ui` detached and wait until its /api/health answers."""
    config = page_config(config_path, port)
    args = ["ui", "--port", str(config.port)] + (["-c", str(config_path)] if config_path else [])
    return page_process(config).start(
        zenloop_command(*args), lambda: answers(page_url(config) + HEALTH_PATH), START_TIMEOUT_S
    )


def serve_foreground(config_path: Path | None, port: int | None = None) -> None:
    import uvicorn

    from ui.server import create_app

    config = load_page_config(config_path, port)
    process = page_process(config)
    process.claim()
    try:
        uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="warning")
    finally:
        process.release()


@click.command()
@config_option(UI_CONFIG, "operations page configuration")
@port_option("the config's port")
@click.option("--detach", is_flag=True, help="Run in the background.")
@click.option(
    "--stop",
    is_flag=True,
    help="Stop the background page of -c/--port, or every one started from this data folder.",
)
def ui(config_path: Path, port: int | None, detach: bool, stop: bool) -> None:
    """The operations page: served model, traffic, drift, the loop's history."""
    if detach and stop:
        raise click.UsageError("--detach and --stop exclude each other")
    config = page_config(config_path, port)
    if stop:  # the one asked for, else every one: whatever config it was started with
        if port is not None or given("config_path"):
            pages = [page_process(config)]
        else:
            pages = BackgroundProcess.running_in(data_dir(), PROCESS_FILES)
        stop_all(pages, "operations page")
        return
    if detach:
        pid = start_background(config_path, port)
        click.echo(f"operations page: {page_url(config)}  (pid {pid}; stop: zenloop ui --stop)")
    else:
        click.echo(f"operations page: {page_url(config)}  (Ctrl+C stops it)")
        serve_foreground(config_path, port)
