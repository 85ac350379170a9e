"""`zenloop deploy`: make sure a service runs, then validate and hand over the champion."""

from __future__ import annotations

from pathlib import Path

import click

from ops.cli.options import DEPLOYMENT_CONFIG, SERVING_CONFIG, config_option


@click.command()
@config_option(DEPLOYMENT_CONFIG, "deployment run configuration")
@click.option(
    "--serving-config",
    "serving_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=SERVING_CONFIG,
    show_default=True,
    help="the service to start when none answers",
)
def deploy(config_path: Path, serving_path: Path) -> None:
    """Validate the champion and make it live (starts a service if none).

    Runs the deployment pipeline after starting `zenloop serve` in the background when
    no service answers at the serving config's address.
    """
    from api.client import base_url
    from ops import runs
    from ops.service import ensure_running
    from zenloop.config import DeploymentConfig, load_pipeline_parameter, load_serving_config

    config = load_pipeline_parameter(config_path, "deploy", DeploymentConfig)
    serving = load_serving_config(serving_path)
    if base_url(serving) != config.service_url.rstrip("/"):
        raise click.UsageError(
            f"{config_path} hands over to {config.service_url}, but {serving_path} serves at "
            f"{base_url(serving)}: make them agree"
        )
    if (pid := ensure_running(serving_path, serving)) is not None:
        click.echo(f"started the service in the background: pid {pid}")
    run = runs.deploy(config_path)
    click.echo(f"deployment run {run.name}: {run.status}")
