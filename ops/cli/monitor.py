"""`zenloop monitor`: one drift check, or the monitor service (--watch)."""

from __future__ import annotations

from pathlib import Path

import click

from ops.cli.options import MONITORING_CONFIG, config_option, given


@click.command()
@config_option(MONITORING_CONFIG, "monitoring run configuration")
@click.option("--watch", is_flag=True, help="Run as a service that reacts to events.")
@click.option("--detach", is_flag=True, help="With --watch: run in the background.")
@click.option(
    "--stop",
    is_flag=True,
    help="Stop -c's model's background monitor; without -c, the one that runs here (with "
    "several, it says which and stops none unless --all).",
)
@click.option("--all", "stop_every", is_flag=True, help="With --stop: every monitor here.")
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
    stop_every: bool,
    max_seconds: float | None,
    events_port: int | None,
) -> None:
    """Check traffic for drift once, or watch it (--watch).

    A check is one run of the monitoring pipeline; when it plans a retraining, the
    retrain runner is launched in its own process.
    """
    from ops import monitor_service
    from zenloop.config import load_monitor_config

    if stop:
        stop_monitors(config_path if given("config_path") else None, stop_every)
        return
    config = load_monitor_config(config_path)
    if events_port is not None:
        config = config.model_copy(update={"events_port": events_port})
    process = monitor_service.monitor_process(config.model_name)
    if watch and detach:
        pid = monitor_service.start_background(config_path, max_seconds, events_port)
        click.echo(
            f"monitor of {config.model_name} watching in the background: pid {pid};"
            f" stop: zenloop monitor --stop -c {config_path}"
        )
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


def stop_monitors(config_path: Path | None, every: bool) -> None:
    """Stop the monitor of `config_path`'s model; without a config, the only one running
    here, or every one with `every`; several without `every`: say which, stop none."""
    from ops import monitor_service
    from zenloop.config import load_monitor_config

    if config_path is not None:
        models = [load_monitor_config(config_path).model_name]
    else:
        models = [
            model
            for model in monitor_service.watched_models()
            if monitor_service.monitor_process(model).running_pid() is not None
        ]
    if len(models) > 1 and not every:
        running = ", ".join(
            f"{model} (pid {monitor_service.monitor_process(model).running_pid()})"
            for model in models
        )
        click.echo(
            f"several monitors run here: {running}; --stop would stop them all: "
            "give -c MONITORING_CONFIG for one, or --all for every one"
        )
        raise click.exceptions.Exit(1)
    stopped = False
    for model in models:
        if (pid := monitor_service.monitor_process(model).stop()) is not None:
            click.echo(f"stopped the monitor of {model} (pid {pid})")
            stopped = True
    if not stopped:
        click.echo("no monitor is running" + (f" for {models[0]}" if config_path else ""))
