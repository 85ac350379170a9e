"""`zenloop image …`: the base image and zenloop's one image (steps, service, monitor)."""

from __future__ import annotations

import click


@click.group()
def image() -> None:
    """Container images, built from the checkout (docker/Dockerfile)."""


@image.command()
def base() -> None:
    """Build the base image from Debian packages (once), or pull $ZENLOOP_BASE_IMAGE."""
    from ops.images import ensure_base_image

    click.echo(f"base image {ensure_base_image()} is ready")


@image.command()
def requirements() -> None:
    """Pin docker/requirements.txt to this environment's versions."""
    from ops.images import REQUIREMENTS_FILE, write_requirements

    changed = write_requirements()
    click.echo(f"{REQUIREMENTS_FILE} {'rewritten' if changed else 'is up to date'}")


@image.command()
@click.option("--tag", default=None, help="Image name (default zenloop:latest).")
def build(tag: str | None) -> None:
    """Build zenloop's image (the base image first, if missing)."""
    from ops.images import PROJECT_IMAGE, build_project_image

    click.echo(f"built {build_project_image(tag or PROJECT_IMAGE)}")
