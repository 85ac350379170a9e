"""`zenloop monitor`: one drift check, or the monitor service (--watch)."""

from __future__ import annotations

from pathlib import Path

import click

from ops.cli.options import MONITORING_CONFIG, config_option


@click.command()
@config_option(MONITORING_CONFIG, "monitoring run configuration")
@click.option("--watch", is_flag=True, help="Run as a service that reacts to events.")
@click.option("--detach", is_flag=True, help="With --watch: run in the background.")
@click.option("--stop", is_flag=True, help="Stop the background monitor.")
@click.option("--max-seconds", type=float, default=None, help="With --watch: stop after this.")
@click.option(
    "--events-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="With --watch: take events on this port (a second monitor on one machine, with a "
    "ZENLOOP_DATA_DIR of its own).",
)
def monitor(
    config_path: Path,
    watch: bool,
    detach: bool,
    stop: bool,
    max_seconds: float | None,
    events_port: int | None,
) -> None:
    """Check traffic for drift once, or watch it (--watch).

    A check is one run of the monitoring pipeline; when it plans a retraining, the
    retrain runner is launched in its own process.
    """
    from ops import monitor_service
    from zenloop.config import load_monitor_config

    config = load_monitor_config(config_path)
    if events_port is not None:
        config = config.model_copy(update={"events_port": events_port})
    process = monitor_service.monitor_process()
    if stop:
        pid = process.stop()
        click.echo(f"stopped monitor pid {pid}" if pid else "no monitor is running")
    elif watch and detach:
        pid = monitor_service.start_background(config_path, max_seconds, events_port)
        click.echo(f"monitor watching in the background: pid {pid}; stop: zenloop monitor --stop")
    elif watch:
        process.claim()
        try:
            monitor_service.Watcher(config_path, config, max_seconds).run()
        finally:
            process.release()
    else:
        decision, plan, _ = monitor_service.check_once(config_path)
        click.echo(f"monitoring: {decision['reason']}")
        if plan.ready:
            click.echo(f"retraining launched: {plan.training_rows} training rows")
