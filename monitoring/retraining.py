"""Retraining plans: what a retraining learns from and why it was asked for.

The monitoring pipeline returns a plan and the data beside it as artifacts; it starts
nothing. The monitor service (operations layer) launches the retrain runner on it, which
trains on those artifacts and, when the new model is promoted, deploys it.
"""

from __future__ import annotations

import logging

import pandas as pd
from pydantic import BaseModel, Field

from monitoring.log_store import GROUND_TRUTH_COLUMN
from zenloop.config import RetrainConfig, Task
from zenloop.data.loading import load_frame
from zenloop.schema import FeatureSchema

logger = logging.getLogger(__name__)

BOOLEAN_TEXT = {"true": True, "false": False, "True": True, "False": False, "1": True, "0": False}


class RetrainPlan(BaseModel):
    """What the monitor service launches; the training and recent rows are artifacts beside it."""

    ready: bool
    reason: str
    model_name: str
    target: str | None = None
    task: Task | None = None
    lease_owner: str | None = None  # the runner renews and releases this lease
    check_id: int | None = None  # the drift check that asked for it
    # columns the champion ignored: left out of the data, still accepted by the new model
    ignored_columns: list[str] = Field(default_factory=list)
    recent_source: str | None = None
    training_rows: int = 0
    recent_rows: int = 0

    def to_markdown(self) -> str:
        if not self.ready:
            return f"## No retraining\n\n{self.reason}\n"
        return (
            f"## Retraining planned for `{self.model_name}`\n\n{self.reason}\n\n"
            f"- training rows: {self.training_rows} (recent labelled data from "
            f"{self.recent_source})\n- recent evaluation rows: {self.recent_rows}\n"
            "- data: the `retrain_train` and `retrain_recent` artifacts of this run\n"
        )


def training_columns(schema: FeatureSchema) -> list[str]:
    """What a retraining learns from: the model's features and the target, nothing the
    model ignores (row numbers, keys), which requests may leave out."""
    return [*schema.feature_names, schema.target]


def _cast(values: pd.Series, dtype) -> pd.Series:
    """Logged values (JSON types: numbers, strings, ISO timestamps) in a training dtype."""
    if pd.api.types.is_datetime64_any_dtype(dtype):
        parsed = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
        zone = getattr(dtype, "tz", None)
        return parsed.dt.tz_convert(zone) if zone is not None else parsed.dt.tz_localize(None)
    if pd.api.types.is_bool_dtype(dtype):
        flags = values.map(lambda v: v if isinstance(v, bool) else BOOLEAN_TEXT.get(str(v)))
        return flags.astype(bool) if flags.notna().all() else flags.astype("boolean")
    if pd.api.types.is_numeric_dtype(dtype):
        numbers = pd.to_numeric(values, errors="coerce")
        whole = pd.api.types.is_integer_dtype(dtype) and numbers.notna().all()
        return numbers.astype(dtype) if whole else numbers.astype(float)
    return values.map(lambda v: None if pd.isna(v) else str(v)).astype(object)


def _like(frame: pd.DataFrame, template: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """Logged rows as the training data: its columns (features and target) and dtypes."""
    columns = training_columns(schema)
    out = frame.reindex(columns=columns)
    for name in columns:
        out[name] = _cast(out[name], template[name].dtype)
    return out


def recent_labelled(
    logged: pd.DataFrame, schema: FeatureSchema, config: RetrainConfig
) -> tuple[pd.DataFrame, str]:
    """Logged rows with ground truth; the configured fallback when there are too few."""
    labelled = logged[logged[GROUND_TRUTH_COLUMN].notna()] if len(logged) else logged
    if len(labelled) >= config.min_labelled_rows:
        rows = labelled.rename(columns={GROUND_TRUTH_COLUMN: schema.target})
        return rows, f"{len(rows)} logged predictions with feedback"
    if config.fallback is None:
        return labelled.iloc[0:0], (
            f"only {len(labelled)} logged rows have feedback (< {config.min_labelled_rows}) "
            "and no fallback is configured"
        )
    rows = load_frame(config.fallback)
    return rows, (
        f"fallback data ({config.fallback.source}, scenario {config.fallback.scenario}): only "
        f"{len(labelled)} logged rows had feedback"
    )


def build_training_sets(
    champion_train: pd.DataFrame,
    recent: pd.DataFrame,
    schema: FeatureSchema,
    config: RetrainConfig,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Old training rows (sampled) plus recent rows, in the training columns and dtypes;
    part of the recent rows held out."""
    recent = _like(recent, champion_train, schema)
    recent = recent[recent[schema.target].notna()]  # feedback that is no valid label
    recent = recent.sample(frac=1.0, random_state=seed)
    n_holdout = max(1, int(len(recent) * config.recent_holdout))
    holdout, recent_train = recent.iloc[:n_holdout], recent.iloc[n_holdout:]
    old = champion_train[training_columns(schema)]
    old = old.sample(min(config.reference_rows, len(old)), random_state=seed)
    train = pd.concat([old, recent_train], ignore_index=True)
    return train, holdout.reset_index(drop=True)
