"""Retraining plans: what a retraining learns from and why it was asked for.

The monitoring pipeline returns a plan and the data beside it as an artifact; it starts
nothing. The monitor service (operations layer) launches the retrain runner on it, which
trains on that artifact and, when the new model is promoted, deploys it.

The data is in time order: the latest rows of the champion's own data (its history), then
the labelled traffic in the order it was logged. The training run splits it in that
order: the newest labelled rows are held out (the candidate, the champion and the naive
baselines are compared on them), the ones before them validate, and a backtest on those
chooses how much of the history the new model learns from.
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
    time_column: str | None = None  # kept in the data, so the new model knows it too
    history_rows: int = 0  # the champion's latest rows, oldest first
    labelled_rows: int = 0  # the labelled traffic after them, in log order
    validation_rows: int = 0  # of the labelled rows: before the holdout
    holdout_rows: int = 0  # of the labelled rows: the newest, never learned from

    @property
    def learning_rows(self) -> int:
        """Labelled rows the new model may learn from (before validation and holdout)."""
        return self.labelled_rows - self.validation_rows - self.holdout_rows

    def to_markdown(self) -> str:
        if not self.ready:
            return f"## No retraining\n\n{self.reason}\n"
        return (
            f"## Retraining planned for `{self.model_name}`\n\n{self.reason}\n\n"
            f"- history: the champion's latest {self.history_rows:,} rows\n"
            f"- labelled traffic: {self.labelled_rows:,} rows ({self.recent_source}): "
            f"{self.learning_rows:,} to learn from, then {self.validation_rows:,} to validate, "
            f"then the newest {self.holdout_rows:,} held out to judge on\n"
            "- data: the `retrain_data` artifact of this run, in time order\n"
        )


def training_columns(schema: FeatureSchema) -> list[str]:
    """What a retraining learns from: the model's features and the target, nothing the
    model ignores (row numbers, keys), which requests may leave out; and the time column,
    which orders the rows."""
    extra = [schema.time_column] if schema.time_column not in (None, *schema.feature_names) else []
    return [*schema.feature_names, *extra, schema.target]


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


def build_retraining_data(
    champion_rows: pd.DataFrame,
    recent: pd.DataFrame,
    schema: FeatureSchema,
    config: RetrainConfig,
) -> tuple[pd.DataFrame, int, int, int, int]:
    """The champion's latest rows then the labelled traffic in log order, in the training
    columns and dtypes; with the counts of history, labelled, validation and holdout rows.

    `champion_rows` are the champion's train, validation and test rows in that order (in
    time order when it was split by time). Feedback that is no valid label is left out.
    """
    recent = _like(recent, champion_rows, schema)
    recent = recent[recent[schema.target].notna()].reset_index(drop=True)
    n = len(recent)
    holdout = max(1, round(n * config.recent_holdout)) if n else 0
    validation = min(max(1, round(n * config.recent_validation)), max(0, n - holdout - 1))
    history = champion_rows[training_columns(schema)].tail(config.reference_rows)
    frame = pd.concat([history, recent], ignore_index=True)
    return frame, len(history), n, validation, holdout
