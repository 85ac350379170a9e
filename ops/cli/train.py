"""`zenloop train`: the training pipeline, as `zenml pipeline run` would start it."""

from __future__ import annotations

from pathlib import Path

import click

from ops.cli.options import TRAINING_CONFIG, config_option


@click.command()
@config_option(TRAINING_CONFIG, "training run configuration")
def train(config_path: Path) -> None:
    """Run the training pipeline on the active stack."""
    from ops import runs

    run = runs.train(config_path)
    click.echo(f"training run {run.name}: {run.status}")
