"""`zenloop serve` and `zenloop status`: the prediction service."""

from __future__ import annotations

from pathlib import Path

import click

from ops.cli.options import SERVING_CONFIG, config_option


@click.command()
@config_option(SERVING_CONFIG, "service configuration")
@click.option("--detach", is_flag=True, help="Run in the background.")
@click.option("--stop", is_flag=True, help="Stop the background service.")
def serve(config_path: Path, detach: bool, stop: bool) -> None:
    """Serve predictions (foreground unless --detach)."""
    from api.client import base_url
    from ops import service
    from zenloop.config import load_serving_config

    if detach and stop:
        raise click.UsageError("--detach and --stop exclude each other")
    config = load_serving_config(config_path)
    process = service.service_process(config)
    if stop:
        pid = process.stop()
        click.echo(f"stopped service pid {pid}" if pid else "no service is running")
    elif detach:
        pid = service.serve_background(config_path, config)
        click.echo(f"service started in the background: pid {pid}, {base_url(config)}")
        click.echo(f"  log: {process.log_file}   stop: zenloop serve --stop")
    else:
        service.serve_foreground(config)


@click.command()
@config_option(SERVING_CONFIG, "service configuration")
def status(config_path: Path) -> None:
    """Show whether the service is up and what it serves.

    Exits 1 when it is not ready.
    """
    from ops import service
    from zenloop.config import load_serving_config

    state = service.status(load_serving_config(config_path))
    process = f"running, pid {state.pid}" if state.pid else "no pid file"
    click.echo(f"service: {process} at {state.url}")
    if state.model:
        model = state.model
        click.echo(f"  serving {model['name']} v{model['version']} (loaded {model['loaded_at']})")
    else:
        click.echo("  not ready (no answer, or no model loaded)")
    if not state.ready:
        raise click.exceptions.Exit(1)
