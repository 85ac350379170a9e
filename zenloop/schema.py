"""The feature schema: which columns a model takes, in which role and type.

Inferred once from training data (with overrides from config) and saved with the model,
so serving, drift checks and retraining all read column roles from one place.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd
from pydantic import BaseModel

from zenloop.config import ColumnRole, FeatureConfig, ProfileConfig, Task
from zenloop.data.loading import DataValidationError

SAMPLE_ROWS_FOR_INFERENCE = 5_000


class ColumnSpec(BaseModel):
    name: str
    role: ColumnRole
    dtype: str
    categories: list[str] | None = None  # observed values for low-cardinality columns
    nullable: bool = True


class FeatureSchema(BaseModel):
    target: str
    task: Task
    columns: list[ColumnSpec]
    classes: list[Any] | None = None

    def names(self, *roles: ColumnRole) -> list[str]:
        return [c.name for c in self.columns if not roles or c.role in roles]

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.columns if c.role != ColumnRole.IGNORE]

    def to_markdown(self) -> str:
        return schema_markdown(self)

    def column(self, name: str) -> ColumnSpec:
        for spec in self.columns:
            if spec.name == name:
                return spec
        raise KeyError(name)


def _looks_like_datetime(values: pd.Series, profile: ProfileConfig) -> bool:
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return False
    sample = values.dropna().astype(str).head(200)
    if sample.empty or not sample.str.contains(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}").all():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return parsed.notna().mean() >= profile.datetime_parse_fraction


def infer_role(values: pd.Series, profile: ProfileConfig) -> ColumnRole:
    """Decide a column's role from its values alone; the embedded schema is never assumed."""
    non_null = values.dropna()
    if non_null.empty:
        return ColumnRole.IGNORE
    if pd.api.types.is_bool_dtype(values):
        return ColumnRole.CATEGORICAL
    if _looks_like_datetime(values, profile):
        return ColumnRole.DATETIME
    if pd.api.types.is_numeric_dtype(values):
        return ColumnRole.NUMERIC
    as_text = non_null.astype(str)
    unique_ratio = as_text.nunique() / len(as_text)
    mean_words = as_text.str.split().str.len().mean()
    if mean_words >= profile.text_min_mean_words:
        return ColumnRole.TEXT
    if as_text.nunique() <= profile.max_onehot_cardinality:
        return ColumnRole.CATEGORICAL
    if unique_ratio >= profile.id_unique_ratio:
        return ColumnRole.IGNORE  # row identifiers carry no signal that generalises
    return ColumnRole.HIGH_CARDINALITY


def infer_schema(
    frame: pd.DataFrame,
    target: str,
    task: Task,
    profile: ProfileConfig,
    features: FeatureConfig,
    source: str,
) -> FeatureSchema:
    unknown = (set(profile.column_roles) | features.referenced_columns()) - set(frame.columns)
    if unknown:
        raise DataValidationError(
            f"{source}: configured columns {sorted(unknown)} are not in the data; "
            f"columns are {list(frame.columns)}"
        )
    sample = frame.sample(min(len(frame), SAMPLE_ROWS_FOR_INFERENCE), random_state=0)
    specs: list[ColumnSpec] = []
    for name in frame.columns:
        if name == target:
            continue
        role = profile.column_roles.get(name) or infer_role(sample[name], profile)
        values = frame[name]
        _check_role_fits(values, role, name, source)
        categories = None
        if role == ColumnRole.CATEGORICAL:
            categories = sorted(values.dropna().astype(str).unique().tolist())
        specs.append(
            ColumnSpec(
                name=name,
                role=role,
                dtype=str(values.dtype),
                categories=categories,
                nullable=bool(values.isna().any()),
            )
        )
    for name in features.referenced_columns():
        if next(s for s in specs if s.name == name).role != ColumnRole.NUMERIC:
            raise DataValidationError(
                f"{source}: column {name!r} is used in features.bins/ratios/interactions "
                "but is not numeric"
            )
    classes = None
    if task == "classification":
        classes = sorted(frame[target].unique().tolist(), key=str)
    return FeatureSchema(target=target, task=task, columns=specs, classes=classes)


def _check_role_fits(values: pd.Series, role: ColumnRole, name: str, source: str) -> None:
    if role == ColumnRole.NUMERIC and not pd.api.types.is_numeric_dtype(values):
        coerced = pd.to_numeric(values, errors="coerce")
        bad = values[coerced.isna() & values.notna()]
        if not bad.empty:
            raise DataValidationError(
                f"{source}: column {name!r} is configured as numeric but holds "
                f"non-numeric values such as {bad.iloc[0]!r}"
            )


def schema_markdown(schema: FeatureSchema) -> str:
    rows = "\n".join(
        f"| {c.name} | {c.role.value} | {c.dtype} | {'yes' if c.nullable else 'no'} |"
        for c in schema.columns
    )
    classes = f", classes {schema.classes}" if schema.classes else ""
    return (
        f"## Feature schema: target `{schema.target}` ({schema.task}{classes})\n\n"
        f"| column | role | dtype | nullable |\n|---|---|---|---|\n{rows}\n"
    )
