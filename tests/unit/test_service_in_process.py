"""The service's app in this process (httpx's ASGI transport, the app's own lifespan): the
rows of concurrent requests share a model call, the fast path answers as FastAPI's routing
does, the byte limit, the metrics, and the workers' selection board."""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from mlflow.tracking import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.model_state import Selection
from api.settings import ServingConfig
from api.shared_selection import SelectionBoard
from tests.support.serving import register_models
from zenloop.config import DataConfig
from zenloop.deployment import request_rows

MODEL = "in-process"
CONCURRENT = 24


@pytest.fixture(scope="module")
def registered():
    return register_models(MODEL, DataConfig(n_rows=1_200, seed=61), ["linear"])


def _config(tmp_path, **overrides) -> ServingConfig:
    return ServingConfig.model_validate(
        {
            "model": {"name": MODEL},
            "tracking_uri": os.environ["MLFLOW_TRACKING_URI"],
            "log": {"database_url": f"sqlite:///{tmp_path / 'log.db'}"},
            "events": {"url": None},
            "reload_interval_s": 3600,
            **overrides,
        }
    )


@asynccontextmanager
async def serving(config: ServingConfig) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://in-process") as client:
            yield client


def _samples(text: str) -> dict[str, float]:
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_concurrent_requests_share_model_calls_and_the_metrics_count_them(registered, tmp_path):
    rows = request_rows(registered.holdout.head(CONCURRENT))

    async def scenario():
        async with serving(_config(tmp_path)) as client:
            answers = await asyncio.gather(*(client.post("/predict", json=r) for r in rows))
            return answers, (await client.get("/metrics")).text

    answers, metrics = asyncio.run(scenario())
    assert [a.status_code for a in answers] == [200] * CONCURRENT
    samples = _samples(metrics)
    assert samples["zenloop_predict_requests[]"] == CONCURRENT
    assert samples["zenloop_predict_model_calls[]"] < CONCURRENT, "rows of one turn, one call"
    served = samples["zenloop_requests_total[('endpoint', '/predict'), ('status', '200')]"]
    assert served == CONCURRENT


REQUESTS = [
    ("POST", "/predict", "row"),
    ("POST", "/predict", {"unit_price": "cheap"}),
    ("POST", "/predict_batch", "batch"),
    ("POST", "/predict_batch", {"rows": []}),
    ("POST", "/predict_batch", "too many rows"),
    ("GET", "/predict", None),
    ("POST", "/predict", b"{not json"),
]


def test_the_fast_path_answers_as_fastapi_routing_does(registered, tmp_path):
    row = request_rows(registered.holdout.head(1))[0]
    bodies = {"row": row, "batch": {"rows": [row, row]}, "too many rows": {"rows": [row] * 4}}

    async def answers(fast: bool) -> list[tuple[int, object]]:
        config = _config(tmp_path / str(fast), fast_path=fast, max_batch_rows=3)
        out = []
        async with serving(config) as client:
            for method, path, body in REQUESTS:
                body = bodies.get(body, body) if isinstance(body, str) else body
                kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
                response = await client.request(method, path, **(kwargs if body else {}))
                payload = response.json()
                for item in payload.get("predictions", []) if isinstance(payload, dict) else []:
                    item.pop("request_id")
                if isinstance(payload, dict):
                    payload.pop("request_id", None)
                out.append((response.status_code, payload))
        return out

    fast, routed = asyncio.run(answers(True)), asyncio.run(answers(False))
    assert [status for status, _ in fast] == [200, 422, 200, 422, 413, 405, 422]
    assert fast == routed


def test_a_body_over_the_limit_is_refused_with_the_limit(registered, tmp_path):
    async def scenario():
        async with serving(_config(tmp_path, max_body_bytes=2_000)) as client:
            return await client.post("/predict_batch", content=b"x" * 5_000)

    refused = asyncio.run(scenario())
    assert refused.status_code == 413 and "2000" in refused.json()["detail"]


def test_the_selection_board_counts_the_workers_that_serve_a_generation(tmp_path):
    board = SelectionBoard(tmp_path / "serve-8000", pid=101)
    other = SelectionBoard(tmp_path / "serve-8000", pid=os.getpid())  # a live process
    first = board.publish(Selection("champion", "3", None))
    second = board.publish(Selection("champion", "4", None))
    assert (first, second) == (1, 2) and board.read().selection.version == "4"
    other.acknowledge(second)
    assert board.serving(second) == 1, "a worker that acknowledged and lives"
    board.acknowledge(second)  # pid 101 is not alive: it does not count
    assert board.serving(second) == 1
    other.withdraw()
    assert board.serving(second) == 0


def test_candidates_are_logged_in_their_parents_experiment(registered):
    """Not in MLflow's Default experiment, whose artifacts would land in ./mlruns."""
    client = MlflowClient()
    version = client.get_model_version(MODEL, "1")
    child = client.get_run(version.run_id)
    experiment = client.get_experiment(child.info.experiment_id)
    assert experiment.name == "zenloop-tests", experiment.name
