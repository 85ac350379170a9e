"""`zenloop serve` and `zenloop status`: the prediction service."""

from __future__ import annotations

import time
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

    config = load_serving_config(config_path)
    state = service.status(config)
    process = f"running, pid {state.pid}" if state.pid else "no pid file"
    click.echo(f"service: {process} at {state.url}")
    if state.model:
        model = state.model
        click.echo(f"  serving {model['name']} v{model['version']} (loaded {model['loaded_at']})")
    else:
        click.echo("  not ready (no answer, or no model loaded)")
    print_history(config.log.database_url)
    if not state.ready:
        raise click.exceptions.Exit(1)


def print_history(log_database_url: str | None) -> None:
    """The loop's latest records, read from the log database: they outlive every process."""
    from ui.records import Records

    records = Records(log_database_url)
    checks, retrains = records.checks(1), records.retrains(1)
    if checks:
        check = checks[0]
        click.echo(
            f"  last check: #{check['id']} at {_when(check['checked_at'])} on"
            f" v{check['model_version']}, drifted share {check['drifted_share']:.0%}:"
            f" {check['decision']} ({check['reason']})"
        )
    else:
        click.echo("  last check: none recorded")
    if retrains:
        retrain = retrains[0]
        onset = retrain["onset_to_serving_s"]
        took = f"; drift onset to serving {onset:.0f} s" if onset is not None else ""
        click.echo(
            f"  last retraining: started {_when(retrain['started_at'])}: {retrain['outcome']}"
            f" ({retrain['summary'] or 'running'}){took}"
        )


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))
