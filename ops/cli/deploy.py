"""`zenloop deploy`: make sure a service runs, then validate and hand over the champion."""

from __future__ import annotations

from pathlib import Path

import click

from ops.cli.options import DEPLOYMENT_CONFIG, config_option


@click.command()
@config_option(DEPLOYMENT_CONFIG, "deployment run configuration")
def deploy(config_path: Path) -> None:
    """Validate the champion and make it live (starts a service if none).

    Runs the deployment pipeline after starting `zenloop serve` in the background when
    no service answers at the serving config's address.
    """
    from ops import runs
    from ops.service import ensure_running
    from zenloop.config import DeploymentConfig, load_pipeline_parameter, load_serving_config
    from zenloop.paths import project_path

    config = load_pipeline_parameter(config_path, "deploy", DeploymentConfig)
    serving_path = project_path(config.serving_config)
    if (pid := ensure_running(serving_path, load_serving_config(serving_path))) is not None:
        click.echo(f"started the service in the background: pid {pid}")
    run = runs.deploy(config_path)
    click.echo(f"deployment run {run.name}: {run.status}")
