"""Failure hooks: a failed step is recorded on the model version it acted on, and alerted.

The open-source dashboard has no Models page, so the record is metadata that
`zenml model version describe` and the API show; a stack with an alerter also posts it.
"""

import logging

from zenml import get_step_context, log_metadata
from zenml.client import Client
from zenml.exceptions import StepContextError

logger = logging.getLogger(__name__)

FAILURE_METADATA = "last_failure"


def record_failure(exception: BaseException) -> None:
    context = get_step_context()
    failure = {
        "pipeline": context.pipeline.name,
        "run": context.pipeline_run.name,
        "step": context.step_run.name,
        "error": f"{type(exception).__name__}: {exception}",
    }
    try:
        model = context.model
    except StepContextError:
        model = None
    if model is not None:
        log_metadata({FAILURE_METADATA: failure}, model_version_id=model.id)
    alerter = Client().active_stack.alerter
    if alerter is not None:
        alerter.post(
            f"zenloop: {failure['pipeline']} failed in {failure['step']}: {failure['error']}"
        )
    logger.error("recorded the failure of %s on the model version", failure["step"])
