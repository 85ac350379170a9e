"""Request and response schemas.

The row schema is built from the served model's feature schema, so validation, error
messages and the OpenAPI docs always describe the model that is actually serving.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    create_model,
)

from zenloop.config import ColumnRole
from zenloop.features import NUMERIC_LIMIT
from zenloop.schema import FeatureSchema

# Strict: the schema says number, so `false` and "3.5" are refused. Bounded: larger values
# would overflow the feature pipeline's float32 (it clips them anyway), so they get a 422.
FiniteFloat = Annotated[
    float,
    Strict(),
    Field(allow_inf_nan=False, ge=-NUMERIC_LIMIT, le=NUMERIC_LIMIT),
]
FEEDBACK_MAX_ITEMS = 10_000  # one statement per request; keeps SQL parameter lists bounded
ROW_SCHEMA_NAME = "PredictRow"  # the row model's name, also its OpenAPI component
JSON_MEDIA_TYPE = "application/json"
FIELD_PREFIX = "c"  # internal field names are c0, c1, ...: any column name is an alias
# what an integer-coded category, or a column the model ignores, may be sent as (strict:
# `false` is a bool, not a number)
AnyScalar = StrictStr | StrictInt | StrictFloat | StrictBool


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _as_is(value: Any) -> Any:
    return value


class RowModels:
    """Validators for one row and for a batch body `{"rows": [...]}` of a feature schema.

    Fields have internal names with the column names as aliases, so a column may be called
    anything (`_id`, `model_config`, `unit price`, `a.b`) without touching pydantic's own
    attributes. `values` maps a validated row back to column names and the log's types.
    """

    def __init__(
        self, row: type[BaseModel], max_rows: int, columns: list[tuple[str, str, Callable]]
    ):
        self.row = row
        self.columns = columns  # (field name, column name, normaliser)
        self.batch = create_model(
            "PredictBatchRequest",
            __config__=ConfigDict(extra="forbid"),
            rows=(list[row], Field(min_length=1, max_length=max_rows)),
        )

    def values(self, row: BaseModel) -> dict[str, Any]:
        """A validated row keyed by column name, in the schema's types.

        Numbers are floats, everything the model reads as a category or text is a string,
        timestamps stay datetimes (JSON writes them as ISO strings): so each logged column
        holds one type, and what the service accepts, the monitor can read.
        """
        fields = row.__dict__
        return {column: normalise(fields[name]) for name, column, normalise in self.columns}

    def json_schema(self) -> dict[str, Any]:
        return self.row.model_json_schema(by_alias=True)


def _refuse_non_text(value: Any) -> Any:
    """Timestamps come as ISO strings: a number is not one, whatever it would parse to."""
    if not isinstance(value, str | datetime):
        raise ValueError("expected an ISO 8601 date-time string")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_refuse_non_text)]


def _field(role: ColumnRole, dtype: str) -> tuple[Any, Callable[[Any], Any]]:
    """The field's type, and how its validated value is normalised."""
    if role == ColumnRole.NUMERIC:
        return FiniteFloat, _number
    if role == ColumnRole.DATETIME:
        return Timestamp, _as_is
    if dtype.startswith(("int", "float", "bool")):  # e.g. integer codes used as categories
        return AnyScalar, _text
    return str, _text


def build_row_models(schema: FeatureSchema, extra: str, max_rows: int) -> RowModels:
    """Columns never missing in training are required keys; the others may be absent. Any
    value may be null (unknown): the model imputes it as it does in training."""
    fields: dict[str, Any] = {}
    columns: list[tuple[str, str, Callable]] = []
    for i, spec in enumerate(schema.columns):
        name = f"{FIELD_PREFIX}{i}"
        if spec.role == ColumnRole.IGNORE:  # e.g. row numbers and keys: optional, not used
            description = f"not used by the model, optional ({spec.dtype} in training)"
            fields[name] = (
                AnyScalar | None,
                Field(default=None, alias=spec.name, description=description),
            )
            columns.append((name, spec.name, _as_is))  # logged as sent: a number stays one
            continue
        kind, normalise = _field(spec.role, spec.dtype)
        description = f"{spec.role.value} column ({spec.dtype} in training); null: unknown"
        if spec.nullable:  # missing in training: the key may be left out
            field = Field(default=None, alias=spec.name, description=description)
        else:  # the key must be there (a misspelt or forgotten column is an error), its
            # value may still be unknown: later traffic lacks values training always had
            field = Field(alias=spec.name, description=description)
        fields[name] = (kind | None, field)
        columns.append((name, spec.name, normalise))
    row = create_model(
        ROW_SCHEMA_NAME,
        __config__=ConfigDict(
            extra="forbid" if extra == "reject" else "ignore", validate_by_name=False
        ),
        **fields,
    )
    return RowModels(row, max_rows, columns)


class ErrorMessage(BaseModel):
    """The body of every error answer except a 422."""

    detail: str


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrors(BaseModel):
    """A 422: one item per bad field, `loc` naming it (e.g. body, rows, 3, unit_price)."""

    detail: list[ValidationIssue]


ERROR_DESCRIPTIONS = {
    400: "the body could not be read as JSON at all (e.g. not UTF-8)",
    401: "no admin token was sent",
    403: "wrong admin token, or admin endpoints are disabled",
    404: "no such model version or alias",
    409: "refused in this configuration (the prediction log is disabled)",
    413: "the body is over the byte limit, or the batch over the row limit; the answer says which",
    422: "invalid request: each bad field is named",
    502: "the model registry or the model failed; the current model keeps serving",
    503: "not ready (no model, the prediction log cannot take rows, or not every worker"
    " switched in time); retry",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses a route can answer."""
    return {
        code: {
            "description": ERROR_DESCRIPTIONS[code],
            "model": ValidationErrors if code == 422 else ErrorMessage,
        }
        for code in codes
    }


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


class RegistryState(BaseModel):
    """Whether the model registry answered the service's last poll."""

    reachable: bool
    since: float | None = Field(default=None, description="when the current outage began")
    error: str | None = None
    checked_at: float | None = None


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
    metric: str = Field(description="the primary metric the model is judged by, end to end")
    time_column: str | None = Field(
        default=None, description="the column that orders rows in time (its split was out-of-time)"
    )
    suspected_leaks: list[str] = Field(
        default_factory=list, description="flagged columns the model uses, with their figures"
    )
    loaded_at: datetime
    registry: RegistryState
    worker_pid: int = Field(description="the worker process that answered (workers > 1)")


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
    workers_serving: int = Field(description="worker processes that serve model_version now")
