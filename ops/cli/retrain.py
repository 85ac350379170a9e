"""`zenloop retrain`: the retrain runner, as the monitor service launches it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from ops.cli.options import MONITORING_CONFIG, config_option


@click.command()
@click.option("--run", "run_id", default=None, help="the monitoring run that planned it")
@config_option(MONITORING_CONFIG, "monitoring run configuration")
@click.option(
    "--warm",
    is_flag=True,
    help="Start up now and wait for the monitor to hand over a run (the monitor starts this).",
)
@click.option("--parent", "parent_pid", type=int, default=None, help="With --warm: the monitor.")
def retrain(run_id: str | None, config_path: Path, warm: bool, parent_pid: int | None) -> None:
    """Run a retraining plan (the monitor starts this).

    Trains on the data the monitoring run planned and deploys the new model when it is
    promoted; the outcome is recorded in the monitor's history either way. With --warm it
    pays its start-up first and then waits for the run, so a retraining starts at once.
    """
    if warm == (run_id is not None):
        raise click.UsageError("give either --run or --warm")
    if warm:
        run_id, config_path = _wait_warm(parent_pid, config_path)
        if run_id is None:
            return
    from ops.retrain_runner import run_retrain

    click.echo(run_retrain(run_id, config_path))


def _wait_warm(parent_pid: int | None, config_path: Path) -> tuple[str | None, Path]:
    """Pay the start-up, then wait for the job of -c's model; (None, ...) when none came."""
    from ops import warm_runner
    from zenloop.config import load_monitor_config

    model = load_monitor_config(config_path).model_name

    started = time.monotonic()
    warm_runner.prewarm()
    click.echo(
        f"warm retrain runner pid {os.getpid()}: ready in {time.monotonic() - started:.1f} s"
    )
    try:
        job = warm_runner.wait_for_job(parent_pid or os.getppid(), model)
        if job is None:
            return None, Path()
        log = warm_runner.warm_dir(model) / f"{os.getpid()}.log"
        click.echo(
            f"retraining {job.monitoring_run_id} (log {warm_runner.take_log(log, job, model)})"
        )
        return job.monitoring_run_id, job.monitor_config
    finally:
        warm_runner.finish(model)
