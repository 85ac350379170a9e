"""The framework's ceiling for the serving benchmark: FastAPI parsing one JSON row, no model.

    uvicorn --factory benchmarks.bare_app:create_app

It parses the same request body as zenloop's /predict (a JSON object of feature values)
and answers a constant, on the same server stack (uvicorn, one worker): what a request
costs when the model, the validation against a schema and the log cost nothing.
"""

from typing import Any

from fastapi import Body, FastAPI


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    async def predict(row: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        return {"prediction": 0.0, "model_version": "constant"}

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app
