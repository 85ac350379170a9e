"""`zenloop retrain`: the retrain runner, as the monitor service launches it."""

from __future__ import annotations

from pathlib import Path

import click

from ops.cli.options import MONITORING_CONFIG, config_option


@click.command()
@click.option("--run", "run_id", required=True, help="the monitoring run that planned it")
@config_option(MONITORING_CONFIG, "monitoring run configuration")
def retrain(run_id: str, config_path: Path) -> None:
    """Run a retraining plan (the monitor starts this).

    Trains on the data the monitoring run planned and deploys the new model when it is
    promoted; the outcome is recorded in the monitor's history either way.
    """
    from ops.retrain_runner import run_retrain

    click.echo(run_retrain(run_id, config_path))
