"""Two ZenML log messages that never apply to zenloop are dropped; every other one stays.

- The ZenML Pro advert: "Models can be viewed in the dashboard using ZenML Pro. Sign up for
  a free trial at https://www.zenml.io/pro/", logged at every step of a run with a model
  when no ZenML Pro server is connected, and "You can visualize your pipeline runs in the
  `ZenML Dashboard`. In order to try it locally, please run `zenml login --local`.", at
  every run without a server. Where a dashboard is connected ZenML logs its URLs instead,
  and those stay.
- "Failed to disable MLflow autologging for the following frameworks: ['fastai']." ZenML's
  MLflow experiment tracker disables the autologging of eight frameworks after every step;
  MLflow 3 no longer ships `mlflow.fastai`, so that one always "fails". zenloop never turns
  autologging on. The message is dropped only when every framework it names has no MLflow
  module: a framework that failed for another reason is still reported.

The filters sit on the exact loggers ZenML logs these from and match the exact text. They
are installed when the `steps` package is imported, because that is the one import every
process running a zenloop step shares: the CLI, the monitor, a step container, a deployed
service.
"""

from __future__ import annotations

import ast
import importlib.util
import logging

ADVERT_LOGGERS = ("zenml.orchestrators.step_run_utils", "zenml.pipelines.pipeline_definition")
ADVERTS = (
    "Models can be viewed in the dashboard using ZenML Pro.",
    "You can visualize your pipeline runs in the `ZenML Dashboard`.",
)
AUTOLOG_LOGGER = "zenml.integrations.mlflow.experiment_trackers.mlflow_experiment_tracker"
AUTOLOG_FAILED = "Failed to disable MLflow autologging for the following frameworks: "
MLFLOW_FLAVOR_MODULE = "mlflow.{framework}"


class AdvertFilter(logging.Filter):
    """Drops ZenML's dashboard and ZenML Pro adverts."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(ADVERTS)


def _has_mlflow_module(framework: str) -> bool:
    try:
        return (
            importlib.util.find_spec(MLFLOW_FLAVOR_MODULE.format(framework=framework)) is not None
        )
    except (ImportError, ValueError):
        return False


class AbsentAutologFilter(logging.Filter):
    """Drops the autologging warning when it names only frameworks MLflow does not ship."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if not message.startswith(AUTOLOG_FAILED):
            return True
        try:
            frameworks = ast.literal_eval(message.removeprefix(AUTOLOG_FAILED).rstrip("."))
        except (SyntaxError, ValueError):
            return True  # a message of another shape: not ours to judge
        if not isinstance(frameworks, list) or not frameworks:
            return True
        return any(_has_mlflow_module(str(framework)) for framework in frameworks)


def _add_once(logger_name: str, log_filter: logging.Filter) -> None:
    logger = logging.getLogger(logger_name)
    if not any(type(f) is type(log_filter) for f in logger.filters):
        logger.addFilter(log_filter)


def install() -> None:
    """Put the filters on ZenML's loggers (idempotent)."""
    for name in ADVERT_LOGGERS:
        _add_once(name, AdvertFilter())
    _add_once(AUTOLOG_LOGGER, AbsentAutologFilter())
