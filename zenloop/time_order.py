"""Time order: the column that orders rows in time, and splits that keep the latest rows out.

A model is judged as its user meets it: on rows later than any it learned from. A random
split of data with a time order flatters every model, trees most of all, since the test
rows then sit between training rows of the same weeks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel

from zenloop.config import ProfileConfig, SplitConfig, SplitOrder
from zenloop.schema import NAME_WORD, FeatureSchema, looks_like_datetime

logger = logging.getLogger(__name__)

YEAR_RANGE = (1700, 2200)  # integers in here, in a column named for years, are years
MIN_TIME_VALUES = 3  # fewer distinct values do not order anything
NAME_SAMPLE_ROWS = 5_000
TIME_WORDS = frozenset(
    {"year", "yr", "date", "time", "period", "month", "week", "quarter", "timestamp", "ts", "t"}
)
YEAR_WORDS = frozenset({"year", "yr"})


@dataclass(frozen=True)
class TimeColumn:
    """The column found to order the rows in time, and why it was taken."""

    name: str
    reason: str


def time_values(values: pd.Series) -> pd.Series:
    """A column's values as sortable numbers: timestamps as nanoseconds, others as floats;
    what cannot be read is NaN."""
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = values.dt.tz_localize(None) if values.dt.tz is not None else values
        return pd.Series(stamps.to_numpy("datetime64[ns]").astype("int64"), index=values.index)
    if pd.api.types.is_bool_dtype(values):
        return pd.Series(np.nan, index=values.index)
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    parsed = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
    out = parsed.dt.tz_localize(None).to_numpy("datetime64[ns]").astype("int64").astype(float)
    return pd.Series(np.where(parsed.isna(), np.nan, out), index=values.index)


def _words(name: str) -> set[str]:
    return {word.lower() for word in NAME_WORD.findall(name)}


def _rank(name: str, values: pd.Series, profile: ProfileConfig) -> tuple[int, int, str] | None:
    """How surely this column orders the rows in time (higher first), its distinct values
    (more first), and the reason; None when it does not."""
    present = values.dropna()
    distinct = int(present.nunique())
    if distinct < MIN_TIME_VALUES or pd.api.types.is_bool_dtype(values):
        return None
    sample = values.head(NAME_SAMPLE_ROWS)
    never_decreases = bool(time_values(present).is_monotonic_increasing)
    in_order = ", never decreasing in file order" if never_decreases else ""
    if looks_like_datetime(sample, profile):
        return (4 if never_decreases else 3), distinct, f"dates or times{in_order}"
    if not pd.api.types.is_numeric_dtype(values):
        return None
    words = _words(name)
    numbers = present.to_numpy(dtype=float)
    whole = bool(np.all(numbers == np.round(numbers)))
    low, high = float(numbers.min()), float(numbers.max())
    if words & TIME_WORDS and never_decreases:
        return 3, distinct, f"named for time, {low:g}..{high:g}{in_order}"
    if words & YEAR_WORDS and whole and YEAR_RANGE[0] <= low and high <= YEAR_RANGE[1]:
        return 2, distinct, f"years {low:g}..{high:g}"
    if whole and never_decreases and distinct < len(present):
        return 1, distinct, (f"a period index {low:g}..{high:g} (rows share periods){in_order}")
    return None


def find_time_column(frame: pd.DataFrame, target: str, profile: ProfileConfig) -> TimeColumn | None:
    """The column that orders the rows in time: dates or times, a column named for time
    that never decreases in file order, years, or a period index (integers shared by
    several rows, never decreasing in file order). Dates first, then the surest kind, then
    the finest (most distinct values). None when no column orders the rows."""
    found = []
    for name in frame.columns:
        if name == target:
            continue
        ranked = _rank(str(name), frame[name], profile)
        if ranked is not None:
            found.append((ranked, name))
    if not found:
        return None
    (_, distinct, reason), name = max(found, key=lambda item: item[0][:2])
    return TimeColumn(name=str(name), reason=f"{reason}; {distinct:,} distinct values")


def _counts(n: int, config: SplitConfig) -> tuple[int, int]:
    """Test and validation rows of `n`, leaving at least one training row."""
    n_test = config.test_rows or max(1, round(config.test_size * n))
    n_val = config.validation_rows or max(1, round(config.validation_size * n))
    if n_test + n_val >= n:
        raise ValueError(
            f"split: {n_test} test and {n_val} validation rows leave none of {n} rows to train on"
        )
    return n_test, n_val


def in_time_order(frame: pd.DataFrame, time_column: str | None) -> pd.DataFrame:
    """Rows oldest first: by the time column (stable, unreadable times first), else as given."""
    if time_column is None:
        return frame.reset_index(drop=True)
    keys = time_values(frame[time_column])
    order = np.argsort(keys.fillna(-np.inf).to_numpy(), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def ordered_split(
    frame: pd.DataFrame, time_column: str | None, config: SplitConfig
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train, validation and test in time order: the test rows are the latest, the
    validation rows just before them."""
    ordered = in_time_order(frame, time_column)
    n_test, n_val = _counts(len(ordered), config)
    cut = len(ordered) - n_test - n_val
    return (
        ordered.iloc[:cut].reset_index(drop=True),
        ordered.iloc[cut : cut + n_val].reset_index(drop=True),
        ordered.iloc[cut + n_val :].reset_index(drop=True),
    )


def split_span(frame: pd.DataFrame, time_column: str | None) -> str:
    """The time a split covers, readably: `2003-01-01 .. 2009-06-01`, or its row count."""
    if time_column is None or time_column not in frame or frame.empty:
        return f"{len(frame):,} rows"
    values = frame[time_column].dropna()
    if values.empty:
        return f"{len(frame):,} rows"
    keys = time_values(values)
    low, high = values.loc[keys.idxmin()], values.loc[keys.idxmax()]
    return f"{len(frame):,} rows, {_shown(low)} .. {_shown(high)}"


def _shown(value) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat() if value != value.normalize() else value.date().isoformat()
    if isinstance(value, float) and value == round(value):
        return f"{value:.0f}"
    return str(value)


def missing_classes(train: pd.DataFrame, schema: FeatureSchema) -> list[str]:
    """Classes the training rows of an ordered split lack (they occur only later)."""
    if schema.task != "classification":
        return []
    seen = set(train[schema.target].astype(str))
    return [str(c) for c in schema.classes or [] if str(c) not in seen]


def describe_split(splits: dict[str, pd.DataFrame], order: str, time_column: str | None) -> str:
    """How the rows were split, with the time each split covers."""
    spans = "; ".join(
        f"{name} {split_span(frame, time_column if order == 'time' else None)}"
        for name, frame in splits.items()
    )
    if order == "time":
        return f"out-of-time on {time_column!r}, the latest rows last: {spans}"
    if order == "file":
        return f"in file order, the latest rows last: {spans}"
    return f"random (seeded): {spans}"


class SplitInfo(BaseModel):
    """How a training run's rows were split: the order, and what each split covers."""

    order: SplitOrder
    description: str

    @property
    def out_of_time(self) -> bool:
        """Validation and test rows come after every training row."""
        return self.order != "random"

    def to_markdown(self) -> str:
        return f"## Split\n\n{self.description}\n"
