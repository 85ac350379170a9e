"""The `zenloop` command line: set up stacks and run the pipelines."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from zenloop.config import ConfigError
from zenloop.paths import PROJECT_ROOT

DEFAULT_TRAINING_CONFIG = PROJECT_ROOT / "configs" / "training.yaml"


def _stack_up(args: argparse.Namespace) -> int:
    from zenloop.stack import stack_up_local

    summary = stack_up_local()
    for line in summary.changed or ["nothing to change"]:
        print(f"  {line}")
    print(f"stack '{summary.name}' is active; MLflow tracking URI: {summary.tracking_uri}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from zenloop.config import load_training_config

    load_training_config(args.config)  # fail fast, before ZenML starts anything
    from pipelines.training import training_pipeline

    run = training_pipeline.with_options(config_path=str(args.config))()
    print(f"training run {run.name}: {run.status}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zenloop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    stack = commands.add_parser("stack", help="ZenML stacks")
    stack_commands = stack.add_subparsers(dest="stack_command", required=True)
    up = stack_commands.add_parser("up", help="register and activate a stack (idempotent)")
    up.add_argument("name", choices=["local"])
    up.set_defaults(handler=_stack_up)
    train = commands.add_parser("train", help="run the training pipeline")
    train.add_argument("-c", "--config", type=Path, default=DEFAULT_TRAINING_CONFIG)
    train.set_defaults(handler=_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
