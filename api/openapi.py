"""The OpenAPI document, with the served model's row schema.

/predict and /predict_batch read the raw body (validation is one pydantic-core pass against
the served model's row model), so FastAPI cannot see their bodies: they are described here,
and the `PredictRow` component is rebuilt from whatever model is serving at the time.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.model_state import ServedModel
from api.schemas import JSON_MEDIA_TYPE, ROW_SCHEMA_NAME
from api.service import Service

ROW_SCHEMA_REF = f"#/components/schemas/{ROW_SCHEMA_NAME}"
NO_MODEL_ROW = {"type": "object", "description": "no model loaded"}
FEEDBACK_ITEM = "FeedbackItem"


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {JSON_MEDIA_TYPE: {"schema": schema}}}


def request_bodies(max_batch_rows: int) -> dict[str, dict[str, Any]]:
    """Path -> request body of the endpoints that validate their raw body themselves."""
    rows = {"type": "array", "items": {"$ref": ROW_SCHEMA_REF}, "minItems": 1}
    batch = {
        "type": "object",
        "required": ["rows"],
        "additionalProperties": False,
        "properties": {"rows": rows | {"maxItems": max_batch_rows}},
    }
    return {"/predict": _body({"$ref": ROW_SCHEMA_REF}), "/predict_batch": _body(batch)}


class ModelOpenAPI:
    """`app.openapi`: cached, and rebuilt when another model is serving."""

    def __init__(self, app: FastAPI, service: Service):
        self.app = app
        self.service = service
        self.built_for: ServedModel | None = None

    def __call__(self) -> dict[str, Any]:
        model = self.service.holder.current
        if self.app.openapi_schema is None or model is not self.built_for:
            self.app.openapi_schema = self._build(model)
            self.built_for = model
        return self.app.openapi_schema

    def _build(self, model: ServedModel | None) -> dict[str, Any]:
        app = self.app
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path, body in request_bodies(self.service.config.max_batch_rows).items():
            schema["paths"][path]["post"]["requestBody"] = body
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components[ROW_SCHEMA_NAME] = model.rows.json_schema() if model else NO_MODEL_ROW
        if model is not None and FEEDBACK_ITEM in components:
            components[FEEDBACK_ITEM]["properties"]["ground_truth"] = ground_truth_schema(model)
        return schema


def ground_truth_schema(model: ServedModel) -> dict[str, Any]:
    """What /feedback accepts as a label for the served model: a number, or one of its classes."""
    if model.schema.classes:
        return {"enum": list(model.schema.classes), "description": "the true class"}
    return {"type": "number", "description": "the true value"}
