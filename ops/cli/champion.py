"""`zenloop champion`: which registered version serves as champion, and how good it was."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ops.cli.options import SERVING_CONFIG, config_option, json_option


def print_champion(model_name: str, as_json: bool = False) -> None:
    from ops.stacks import use_stack_tracking
    from zenloop.tracking import champion_summary

    use_stack_tracking()
    summary = champion_summary(model_name)
    if as_json:
        click.echo(json.dumps({"model": model_name, "champion": summary}, default=str))
        return
    if summary is None:
        click.echo(f"no champion for model '{model_name}' yet")
        return
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(summary["test_metrics"].items()))
    click.echo(f"champion: {summary['name']} v{summary['version']} ({summary['candidate']})")
    click.echo(f"  test metrics: {metrics}")
    click.echo(f"  MLflow run:   {summary['run_id']}")


@click.command()
@config_option(SERVING_CONFIG, "service configuration: its model is the one shown")
@click.option("--model", default=None, help="a registered model instead of the config's")
@json_option("one JSON object: {model, champion}")
def champion(config_path: Path, model: str | None, as_json: bool) -> None:
    """Show the champion version and its test metrics.

    Reads the registry of the active stack. `champion` in the JSON is null when the model
    has none, else its name, version, candidate family, MLflow run and test metrics.
    """
    from api.settings import load_serving_config

    print_champion(model or load_serving_config(config_path).model.name, as_json)
