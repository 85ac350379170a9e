"""`zenloop retrain`: the retrain runner, as the monitor service launches it."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--plan",
    "plan_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="plan.json written by the monitoring pipeline",
)
def retrain(plan_path: Path) -> None:
    """Run a retraining plan (the monitor starts this).

    Trains on the plan's data and deploys the new model when it is promoted.
    """
    from ops.retrain_runner import run_plan

    click.echo(run_plan(plan_path).summary)
