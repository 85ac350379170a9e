"""Request and response schemas.

The row schema is built from the served model's feature schema, so validation, error
messages and the OpenAPI docs always describe the model that is actually serving.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from zenloop.config import ColumnRole
from zenloop.schema import FeatureSchema

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
FEEDBACK_MAX_ITEMS = 10_000  # one statement per request; keeps SQL parameter lists bounded
ROW_SCHEMA_NAME = "PredictRow"  # the row model's name, also its OpenAPI component
JSON_MEDIA_TYPE = "application/json"


class RowModels:
    """Validators for one row and for a batch body `{"rows": [...]}` of a feature schema."""

    def __init__(self, row: type[BaseModel], max_rows: int):
        self.row = row
        self.batch = create_model(
            "PredictBatchRequest",
            __config__=ConfigDict(extra="forbid"),
            rows=(list[row], Field(min_length=1, max_length=max_rows)),
        )

    def json_schema(self) -> dict[str, Any]:
        return self.row.model_json_schema()


def _field_type(role: ColumnRole, dtype: str) -> Any:
    if role == ColumnRole.NUMERIC:
        return FiniteFloat
    if role == ColumnRole.DATETIME:
        return datetime
    if dtype.startswith(("int", "float", "bool")):  # e.g. integer codes used as categories
        return str | int | float | bool
    return str


def build_row_models(schema: FeatureSchema, extra: str, max_rows: int) -> RowModels:
    """Columns never missing in training are required; the others may be null or absent."""
    fields: dict[str, Any] = {}
    for spec in schema.columns:
        if spec.role == ColumnRole.IGNORE:  # e.g. ids: accepted and logged, not used
            fields[spec.name] = (
                str | int | float | None,
                Field(default=None, description="not used"),
            )
            continue
        kind = _field_type(spec.role, spec.dtype)
        description = f"{spec.role.value} column ({spec.dtype} in training)"
        if spec.nullable:
            fields[spec.name] = (kind | None, Field(default=None, description=description))
        else:
            fields[spec.name] = (kind, Field(description=description))
    row = create_model(
        ROW_SCHEMA_NAME,
        __config__=ConfigDict(extra="forbid" if extra == "reject" else "ignore"),
        **fields,
    )
    return RowModels(row, max_rows)


class PredictionOut(BaseModel):
    request_id: str
    prediction: Any = Field(description="the value (regression) or the class label")
    probabilities: dict[str, float] | None = Field(
        default=None, description="class -> probability, for classifiers"
    )


class PredictResponse(PredictionOut):
    model_version: str


class PredictBatchResponse(BaseModel):
    model_version: str
    predictions: list[PredictionOut]


class FeedbackItem(BaseModel):
    request_id: str = Field(min_length=1, max_length=64)
    ground_truth: Any


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[FeedbackItem] = Field(min_length=1, max_length=FEEDBACK_MAX_ITEMS)


class FeedbackResponse(BaseModel):
    stored: int
    unknown_request_ids: list[str]


class ModelInfo(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    name: str
    version: str
    alias: str | None
    source: str
    mlflow_run_id: str | None
    zenml_model_version: str | None
    training_metrics: dict[str, dict[str, float]]
    task: str
    target: str
    classes: list[Any] | None
    feature_schema: list[dict[str, Any]]
    loaded_at: datetime


class RegisteredVersion(BaseModel):
    version: str
    aliases: list[str]
    stage: str | None
    mlflow_run_id: str | None
    created_at: datetime
    serving: bool


class ModelLoadResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    model_version: str
    previous_version: str | None
    changed: bool
