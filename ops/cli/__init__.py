"""The `zenloop` command line: set up stacks, run the pipelines, serve, watch, demo.

One command (or group) per module; each imports what it needs when it runs, so
`zenloop --help` answers at once.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from ops.cli.champion import champion
from ops.cli.demo import demo
from ops.cli.deploy import deploy
from ops.cli.image import image
from ops.cli.init import init
from ops.cli.monitor import monitor
from ops.cli.replay import replay
from ops.cli.retrain import retrain
from ops.cli.serve import serve, status
from ops.cli.stack import stack
from ops.cli.train import train
from ops.cli.ui import ui
from ops.processes import plain_unless_terminal
from zenloop.errors import UserError

QUIET_LOGGERS = ("httpx",)  # one line per request is noise here


def quiet_output() -> None:
    """What a command's output leaves out: colours and progress bars when it goes to a file
    or a pipe, and a line per HTTP request. Before ZenML is imported."""
    plain_unless_terminal()
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class Zenloop(click.Group):
    """Lists commands in the order of the loop. What a user can fix is one line and exit
    2; a bug shows its traceback; with --debug everything does."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=Zenloop, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the traceback of every error.")
def cli(debug: bool) -> None:
    """zenloop: train, deploy, serve, watch and retrain a tabular model on a ZenML stack."""
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    quiet_output()


LOOP_ORDER = (stack, image, init, train, deploy, serve, status, replay, ui, monitor, retrain)
for command in (*LOOP_ORDER, champion, demo):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="zenloop")


if __name__ == "__main__":
    sys.exit(main())
