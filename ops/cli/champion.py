"""`zenloop champion`: which registered version serves as champion, and how good it was."""

from __future__ import annotations

import click

from zenloop.config import DEFAULT_MODEL_NAME


def print_champion(model_name: str) -> None:
    from ops.stacks import use_stack_tracking
    from zenloop.tracking import champion_summary

    use_stack_tracking()
    summary = champion_summary(model_name)
    if summary is None:
        click.echo(f"no champion for model '{model_name}' yet")
        return
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(summary["test_metrics"].items()))
    click.echo(f"champion: {summary['name']} v{summary['version']} ({summary['candidate']})")
    click.echo(f"  test metrics: {metrics}")
    click.echo(f"  MLflow run:   {summary['run_id']}")


@click.command()
@click.option("--model", default=DEFAULT_MODEL_NAME, show_default=True, help="registered model")
def champion(model: str) -> None:
    """Show the champion version and its test metrics.

    Reads the registry of the active stack.
    """
    print_champion(model)
