"""Data steps: load and validate, infer the feature schema, split."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step
from zenml.client import Client

from zenloop.config import DataConfig, FeatureConfig, ProfileConfig, SplitConfig
from zenloop.data.loading import (
    data_fingerprint,
    load_frame,
    source_label,
    target_column,
    validate_frame,
)
from zenloop.schema import FeatureSchema, infer_schema
from zenloop.time_order import SplitInfo, describe_split
from zenloop.training import split_in_order


@step(enable_cache=False)
def fingerprint_data(data: DataConfig) -> Annotated[str, "data_fingerprint"]:
    """Never cached: it looks at the data each run, so a changed file is never missed."""
    return data_fingerprint(data)


@step
def load_dataset(
    data: DataConfig, fingerprint: str, ignored: list[str] | None = None
) -> Annotated[pd.DataFrame, "dataset"]:
    """Cached by the data's fingerprint, so unchanged data is not read and checked again.
    Columns the profile ignores (`ignored`) are not held to `max_missing_fraction`.

    An artifact source (a retraining's data, written by the monitoring pipeline) is read
    through the ZenML store, so it reaches any orchestrator.
    """
    if data.source == "artifact":
        frame = Client().get_artifact_version(data.artifact_id).load()
        validate_frame(frame, data, ignored or ())
    else:
        frame = load_frame(data, ignored or ())
    log_metadata(
        {"source": source_label(data), "rows": len(frame), "columns": frame.shape[1]},
        infer_artifact=True,
        artifact_name="dataset",
    )
    return frame


@step
def profile_dataset(
    dataset: pd.DataFrame,
    data: DataConfig,
    profile: ProfileConfig,
    features: FeatureConfig,
    metric: str | None = None,
) -> Annotated[FeatureSchema, "feature_schema"]:
    return infer_schema(
        dataset,
        target_column(data),
        data.task,
        profile,
        features,
        source_label(data),
        time_column=data.time_column,
        metric=metric,
    )


@step
def split_dataset(
    dataset: pd.DataFrame, schema: FeatureSchema, split: SplitConfig
) -> tuple[
    Annotated[pd.DataFrame, "train"],
    Annotated[pd.DataFrame, "validation"],
    Annotated[pd.DataFrame, "test"],
    Annotated[SplitInfo, "split"],
]:
    """Out-of-time when the rows have a time order: validation and test are the latest."""
    train, validation, test, order = split_in_order(dataset, schema, split)
    splits = {"train": train, "validation": validation, "test": test}
    info = SplitInfo(order=order, description=describe_split(splits, order, schema.time_column))
    log_metadata({"split": info.model_dump(mode="json")})
    return train, validation, test, info  # a literal tuple: ZenML reads it as four outputs
