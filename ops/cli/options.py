"""What the commands share: the shipped config files and the options that name them."""

from __future__ import annotations

from pathlib import Path

import click

from zenloop.paths import PROJECT_ROOT

CONFIGS = PROJECT_ROOT / "configs"
TRAINING_CONFIG = CONFIGS / "training.yaml"
SERVING_CONFIG = CONFIGS / "serving.yaml"
DEPLOYMENT_CONFIG = CONFIGS / "deployment.yaml"
MONITORING_CONFIG = CONFIGS / "monitoring.yaml"


def port_option(what: str):
    """`--port N`: this port instead of `what`."""
    return click.option(
        "--port", type=click.IntRange(1, 65535), default=None, help=f"a port instead of {what}"
    )


def config_option(default: Path, what: str):
    """`-c/--config FILE`, defaulting to the shipped file."""
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=default,
        show_default=True,
        help=f"{what} (YAML)",
    )


def given(parameter: str) -> bool:
    """Whether the user gave this option (rather than its default)."""
    source = click.get_current_context().get_parameter_source(parameter)
    return source not in (None, click.core.ParameterSource.DEFAULT)


def json_option(shape: str):
    """`--json`: print `shape` as the only thing on stdout; ZenML's console logs (which it
    writes to stdout, such as a config file's reload) go to stderr for that command."""

    def keep_stdout_for_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        if value:
            logs_to_stderr()
        return value

    return click.option(
        "--json", "as_json", is_flag=True, help=shape, callback=keep_stdout_for_json
    )


def logs_to_stderr() -> None:
    """Point ZenML's console handler at stderr (importing zenml installs it on stdout)."""
    import logging
    import sys

    from zenml.logger import ZenMLConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, ZenMLConsoleHandler):
            handler.setStream(sys.stderr)
