"""`zenloop stack …`: the stacks the pipelines run on, by name (configs/stacks/NAME.yaml)."""

from __future__ import annotations

import click


class StackName(click.ParamType):
    """A stack file's name; the choices are read when used, not when the CLI starts."""

    name = "NAME"

    def convert(self, value, param, ctx) -> str:
        from ops.stacks import stack_names

        if value not in stack_names():
            self.fail(f"{value!r} is not a stack; stacks are {', '.join(stack_names())}")
        return value


@click.group()
def stack() -> None:
    """ZenML stacks, by name."""


@stack.command()
@click.argument("name", type=StackName())
def up(name: str) -> None:
    """Start what stack NAME needs, register it and activate it (idempotent)."""
    from ops.stacks import stack_up

    summary = stack_up(name)
    for line in summary.changed or ["nothing to change"]:
        click.echo(f"  {line}")
    click.echo(f"stack '{summary.name}' is active; MLflow tracking URI: {summary.tracking_uri}")
    if summary.dashboard_url:
        click.echo(f"ZenML dashboard: {summary.dashboard_url}")


@stack.command()
@click.argument("name", type=StackName())
def down(name: str) -> None:
    """Stop the servers stack NAME started."""
    from ops.stacks import stack_down

    for line in stack_down(name) or ["nothing was running"]:
        click.echo(f"  {line}")


@stack.command()
@click.argument("name", type=StackName())
def use(name: str) -> None:
    """Activate stack NAME (after `zenloop stack up NAME`)."""
    from ops.stacks import stack_use

    stack_use(name)
    click.echo(f"stack '{name}' is active")


@stack.command(name="list")
def list_stacks() -> None:
    """The stacks, whether they are set up and active, and their servers."""
    from ops.stacks import stack_states

    for state in stack_states():
        marks = ("*" if state.active else " ") + (" registered" if state.registered else "")
        click.echo(f"{marks} {state.name}: {state.description}")
        for server, up in state.servers.items():
            click.echo(f"      {server}: {'running' if up else 'stopped'}")
