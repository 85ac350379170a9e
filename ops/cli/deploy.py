"""`zenloop deploy`: make sure a service runs, then validate and hand over the champion."""

from __future__ import annotations

from pathlib import Path

import click

from ops.cli.options import DEPLOYMENT_CONFIG, config_option


def require_version(model: str, alias_or_version: str) -> None:
    """A model with nothing to deploy is said in one line, not in ZenML's traceback."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from ops.stacks import use_stack_tracking
    from zenloop.tracking import alias_version

    use_stack_tracking()
    client = MlflowClient()
    if alias_or_version.isdigit():
        try:
            client.get_model_version(model, alias_or_version)
        except MlflowException as exc:
            raise click.ClickException(f"{model} has no version {alias_or_version}") from exc
        return
    if alias_version(client, model, alias_or_version) is None:
        raise click.ClickException(
            f"{model} has no {alias_or_version} yet: no training run promoted a model (each "
            "run's promotion_decision says why; `zenloop champion` shows what serves)"
        )


@click.command()
@config_option(DEPLOYMENT_CONFIG, "deployment run configuration")
@click.option(
    "--serving-config",
    "serving_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="the service to start when none answers  [default: the deployment config's "
    "serving_config]",
)
def deploy(config_path: Path, serving_path: Path | None) -> None:
    """Validate the champion and make it live (deploys the service if none answers).

    Runs the deployment pipeline after deploying the service through the active stack's
    deployer (`zenloop serve --detach`) when none answers at the serving config's address.
    """
    from api.settings import load_serving_config
    from ops import runs
    from ops.service import ensure_running
    from zenloop.config import load_deployment_config
    from zenloop.paths import project_path

    config = load_deployment_config(config_path)
    if serving_path is None and config.serving_config is not None:
        serving_path = project_path(config.serving_config)
    serving = load_serving_config(serving_path)
    if serving.url != config.service_url.rstrip("/"):
        raise click.UsageError(
            f"{config_path} hands over to {config.service_url}, but "
            f"{serving_path or 'the default serving config'} serves at {serving.url}: "
            "make them agree"
        )
    require_version(config.model_name, config.version or config.alias)
    if (deployed := ensure_running(serving)) is not None:
        click.echo(f"service deployed: {deployed.name} at {deployed.url}")
    run = runs.deploy(config_path)
    click.echo(f"deployment run {run.name}: {run.status}")
