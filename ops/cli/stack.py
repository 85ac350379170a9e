"""`zenloop stack …`: register and activate the stacks the pipelines run on."""

from __future__ import annotations

import click

STACK_NAMES = ("local",)


@click.group()
def stack() -> None:
    """ZenML stacks, by name."""


@stack.command()
@click.argument("name", type=click.Choice(STACK_NAMES))
def up(name: str) -> None:
    """Set up stack NAME and activate it (idempotent)."""
    from ops.stacks import stack_up_local

    summary = stack_up_local()
    for line in summary.changed or ["nothing to change"]:
        click.echo(f"  {line}")
    click.echo(f"stack '{summary.name}' is active; MLflow tracking URI: {summary.tracking_uri}")
