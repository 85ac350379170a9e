"""`zenloop stack …`: the stacks the pipelines run on, by name (configs/stacks/NAME.yaml)."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import click


class StackName(click.ParamType):
    """A stack file's name; the choices are read when used, not when the CLI starts."""

    name = "NAME"

    def convert(self, value, param, ctx) -> str:
        from ops.stacks import stack_names

        if value not in stack_names():
            self.fail(f"{value!r} is not a stack; stacks are {', '.join(stack_names())}")
        return value


def _echo_changes(changed: list[str]) -> None:
    for line in changed or ["nothing to change"]:
        click.echo(f"  {line}")


@click.group()
def stack() -> None:
    """ZenML stacks, by name."""


@stack.command()
@click.argument("name", type=StackName())
@click.option(
    "--register-only",
    is_flag=True,
    help="Register and activate only: start, build and contact nothing (to render "
    "`zenloop stack manifests` before the stack's servers exist).",
)
def up(name: str, register_only: bool) -> None:
    """Start what stack NAME needs, register it and activate it (idempotent)."""
    from ops.stacks import stack_register, stack_up

    if register_only:
        _echo_changes(stack_register(name))
        click.echo(f"stack '{name}' is registered and active; nothing was started")
        return
    summary = stack_up(name)
    _echo_changes(summary.changed)
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


SERVICE = "service"  # the prediction service's deployment, not a pipeline's steps


@stack.command()
@click.argument("pipeline", type=click.Choice(["training", "deployment", "monitoring", SERVICE]))
@click.option(
    "-c",
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The pipeline's run configuration, as for `zenml pipeline run`; for `service`, "
    "the serving config.",
)
@click.option("--image", help="The pushed project image the steps run in.")
@click.option("--build", "build_id", type=click.UUID, help="A ZenML build (zenml pipeline build).")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write one STEP.yaml per step into this folder (default: all to standard output).",
)
def manifests(
    pipeline: str, config_path: Path, image: str | None, build_id: UUID | None, output: Path | None
) -> None:
    """The Kubernetes Job of every step of PIPELINE on the active (Kubernetes) stack, or,
    for `service`, the resources of the prediction service's deployment.

    What ZenML's orchestrator pod (or its Kubernetes deployer) would submit, rendered here
    without a cluster; it stores the pipeline's snapshot on the ZenML server, and applies
    nothing.
    """
    import yaml

    from ops.pod_manifests import render

    if pipeline == SERVICE:
        _service_manifests(config_path, image, output)
        return
    jobs = render(pipeline, config_path, image=image, build=build_id)
    if output is None:
        click.echo(yaml.safe_dump_all(jobs.values(), sort_keys=False), nl=False)
        return
    output.mkdir(parents=True, exist_ok=True)
    for step_name, job in jobs.items():
        (output / f"{step_name}.yaml").write_text(yaml.safe_dump(job, sort_keys=False))
    click.echo(f"wrote {len(jobs)} Job manifests to {output}")


def _service_manifests(config_path: Path, image: str | None, output: Path | None) -> None:
    from api.settings import load_serving_config
    from ops.deployment_manifests import render, write

    if image is None:
        raise click.UsageError("the service's resources need --image: the pushed project image")
    text = write(render(load_serving_config(config_path), image))
    if output is None:
        click.echo(text, nl=False)
        return
    output.mkdir(parents=True, exist_ok=True)
    (output / "service.yaml").write_text(text)
    click.echo(f"wrote the service's resources to {output / 'service.yaml'}")
