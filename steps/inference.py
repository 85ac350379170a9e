"""Predictions for rows, by the champion: the step of the inference pipeline.

When the pipeline is deployed, `zenml deployment invoke` runs it in the service's own
process, one run per call (the service's `/predict` is the fast path, this is the ZenML
way to ask). Run as a batch (`zenml pipeline run`), it predicts a file's worth of rows.
The champion is read from the stack's registry once per version.
"""

from functools import lru_cache
from typing import Annotated, Any

import pandas as pd
from mlflow.tracking import MlflowClient
from zenml import step

from steps.registry import configure_mlflow
from zenloop.bundle import ModelBundle
from zenloop.config import DEFAULT_ALIAS, DEFAULT_MODEL_NAME
from zenloop.tracking import load_bundle

VERSIONS_KEPT = 2  # the champion, and the one before it while a swap settles


@lru_cache(maxsize=VERSIONS_KEPT)
def _bundle(name: str, version: str) -> ModelBundle:
    return load_bundle(f"models:/{name}/{version}")


@step(enable_cache=False)
def predict_rows(
    rows: list[dict[str, Any]],
    model_name: str = DEFAULT_MODEL_NAME,
    alias: str = DEFAULT_ALIAS,
) -> Annotated[list[dict[str, Any]], "predictions"]:
    """The prediction (and class probabilities) of the version behind `alias` for each row.

    The model and alias are the step's parameters in the run config (the served ones, as
    `zenloop serve --detach` writes them), not inputs of a call."""
    if not rows:
        return []
    configure_mlflow()
    version = MlflowClient().get_model_version_by_alias(model_name, alias).version
    name = model_name
    frame = _bundle(name, str(version)).predict_frame(pd.DataFrame(rows))
    return [{"model_version": str(version), **record} for record in frame.to_dict(orient="records")]
