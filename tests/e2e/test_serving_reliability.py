"""Requests cannot hurt the service, and its failures are loud: real uvicorn on 127.0.0.1.

Oversized bodies, huge numbers, big batches beside single rows, hostile column names, a
dead log writer, a registry outage, and memory across repeated swaps.
"""

import logging
import math
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from api import log_writer
from api.settings import ServingConfig, default_body_limit
from monitoring.log_store import PredictionLogStore
from tests.support.serving import (
    ADMIN_TOKEN,
    free_port,
    in_process_service,
    metric,
    register_models,
    rss_bytes,
    running_service,
)
from tests.support.waiting import wait_for
from zenloop.config import DataConfig
from zenloop.deployment import VALIDATED_TAG, request_rows
from zenloop.features import NUMERIC_LIMIT

MODEL = "reliability-tests"
HOSTILE_MODEL = "hostile-names"
MAX_ROWS = 10_000
LIMIT = default_body_limit(MAX_ROWS)
OVERSIZED = 150 * 1024 * 1024
CHUNK = 1024 * 1024
MAX_GROWTH = 50 * 1024 * 1024  # memory a rejected oversized body may cost the service
SWAPS = 20
WARM_UP_SWAPS = 4
MAX_SWAP_GROWTH = 30 * 1024 * 1024
WAIT_S = 30.0
RELOAD_INTERVAL_S = 0.2
SINGLES_DURING_BATCH = 5  # single rows answered while one 10,000-row batch is in flight
DEAD_REGISTRY = "http://127.0.0.1:9"  # the discard port: nothing answers there
HOSTILE_COLUMNS = ["_id", "model_config", "schema", "unit price", "a.b", "copy", "fields"]


@pytest.fixture(scope="module")
def registered():
    return register_models(MODEL, DataConfig(n_rows=2_000, seed=31), ["random_forest", "xgboost"])


@pytest.fixture(scope="module")
def service(registered, tmp_path_factory):
    with running_service(
        tmp_path_factory.mktemp("reliability"), MODEL, max_batch_rows=MAX_ROWS
    ) as svc:
        svc.wait_ready()
        yield svc


def _raw_request(url: str, headers: list[str], body_chunks=()) -> bytes:
    """Send a request by hand (httpx would insist on sending the whole body); the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=WAIT_S) as sock:
        head = "\r\n".join(["POST /predict_batch HTTP/1.1", f"Host: {host}", *headers])
        sock.sendall((head + "\r\n\r\n").encode())
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-body: the server closed the connection
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
    return answer


def _chunked(total: int):
    piece = b"x" * CHUNK
    for _ in range(total // CHUNK):
        yield b"%x\r\n" % CHUNK + piece + b"\r\n"
    yield b"0\r\n\r\n"


def test_oversized_bodies_get_413_with_the_limit_and_cost_no_memory(service):
    with service.client() as client:
        over = client.post(
            "/predict_batch",
            content=b'{"rows": [' + b" " * LIMIT + b"]}",
            headers={"Content-Type": "application/json"},
        )
        assert over.status_code == 413 and str(LIMIT) in over.json()["detail"]
        docs = client.get("/openapi.json").json()["paths"]
    assert "413" in docs["/predict_batch"]["post"]["responses"]

    before = rss_bytes(service.pid)
    declared = _raw_request(
        service.url, [f"Content-Length: {OVERSIZED}", "Content-Type: application/json"]
    )
    assert declared.startswith(b"HTTP/1.1 413") and str(LIMIT).encode() in declared
    streamed = _raw_request(
        service.url,
        ["Transfer-Encoding: chunked", "Content-Type: application/json"],
        _chunked(OVERSIZED),
    )
    assert not streamed or streamed.startswith(b"HTTP/1.1 413")
    growth = rss_bytes(service.pid) - before
    assert growth < MAX_GROWTH, f"a refused body cost {growth / 2**20:.0f} MB"
    with service.client() as client:
        assert client.get("/ready").status_code == 200


def test_huge_numbers_are_refused_by_name_or_predict(service, registered):
    rows = request_rows(registered.holdout.head(1))
    with service.client() as client:
        single = client.post("/predict", json=rows[0] | {"unit_price": 1e200})
        batch = client.post(
            "/predict_batch", json={"rows": [rows[0], rows[0] | {"quantity": 1e200}]}
        )
        assert single.status_code == 422 and batch.status_code == 422
        assert single.json()["detail"][0]["loc"] == ["body", "unit_price"]
        assert batch.json()["detail"][0]["loc"] == ["body", "rows", 1, "quantity"]
        largest = rows[0] | {"unit_price": NUMERIC_LIMIT, "quantity": -NUMERIC_LIMIT}
        for n in (1, 255, 256):  # both sides of the switch to the model's own predict
            response = client.post("/predict_batch", json={"rows": [largest] * n})
            assert response.status_code == 200, response.text
            assert all(math.isfinite(p["prediction"]) for p in response.json()["predictions"])


def test_a_big_batch_does_not_stall_single_rows(service, registered):
    rows = request_rows(registered.holdout.head(100))
    big = {"rows": (rows * (MAX_ROWS // len(rows)))[:MAX_ROWS]}
    big["rows"][0] = big["rows"][0] | {"unit_price": NUMERIC_LIMIT}  # 10,000 rows, one huge
    done = threading.Event()

    def batch() -> httpx.Response:
        with service.client() as client:
            try:
                return client.post("/predict_batch", json=big)
            finally:
                done.set()

    singles = 0
    with ThreadPoolExecutor(1) as pool, service.client() as client:
        future = pool.submit(batch)
        while not done.is_set():
            assert client.post("/predict", json=rows[singles % len(rows)]).status_code == 200
            singles += 1
        response = future.result()
    assert response.status_code == 200 and len(response.json()["predictions"]) == MAX_ROWS
    assert singles >= SINGLES_DURING_BATCH, "single rows waited for the batch"


def test_memory_stays_flat_across_repeated_swaps(service, registered):
    with service.client() as client:
        MlflowClient().set_model_version_tag(MODEL, "2", VALIDATED_TAG, "test")

        def swap(i: int) -> None:
            version = str(i % 2 + 1)
            response = client.post(f"/models/load?version={version}", headers=service.admin())
            assert response.status_code == 200 and response.json()["model_version"] == version
            assert client.post("/predict", json=request_rows(registered.holdout.head(1))[0])

        for i in range(WARM_UP_SWAPS):
            swap(i)
        before = rss_bytes(service.pid)
        for i in range(SWAPS):
            swap(i)
        growth = rss_bytes(service.pid) - before
        assert metric(client, "zenloop_model_reloads_total") >= SWAPS + WARM_UP_SWAPS
    assert growth < MAX_SWAP_GROWTH, f"{SWAPS} swaps grew the service by {growth / 2**20:.0f} MB"


def _hostile_frame(n: int, seed: int = 3) -> pd.DataFrame:
    """A user's file whose column names are pydantic's and Python's own words."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "_id": [f"ID{i:06d}" for i in range(n)],
            "model_config": rng.normal(10, 3, n),
            "schema": rng.choice(["a", "b", "c"], n),
            "unit price": rng.uniform(1, 100, n),
            "a.b": rng.choice(["x", "y"], n),
            "copy": rng.integers(0, 5, n),
            "fields": rng.uniform(0, 1, n),
        }
    )
    frame["y"] = 2 * frame["unit price"] + frame["model_config"] + rng.normal(0, 1, n)
    return frame


def test_any_column_name_trains_serves_and_logs(tmp_path):
    frame = _hostile_frame(600)
    data = DataConfig(source="file", path=str(tmp_path / "unused.csv"), target="y")
    registered = register_models(HOSTILE_MODEL, data, ["xgboost"], frame=frame)
    rows = request_rows(registered.holdout.head(5))
    with running_service(tmp_path, HOSTILE_MODEL) as svc:
        svc.wait_ready()
        with svc.client() as client:
            single = client.post("/predict", json=rows[0])
            batch = client.post("/predict_batch", json={"rows": rows})
            bad = client.post("/predict", json=rows[0] | {"unit price": "cheap"})
            schema = client.get("/openapi.json").json()["components"]["schemas"]["PredictRow"]
    assert single.status_code == 200 and batch.status_code == 200, single.text + batch.text
    assert math.isfinite(single.json()["prediction"])
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "unit price"]
    assert set(HOSTILE_COLUMNS) <= set(schema["properties"])
    logged = PredictionLogStore(f"sqlite:///{svc.log_db}").last_rows(10)
    assert len(logged) == 6 and set(HOSTILE_COLUMNS) <= set(logged.columns)
    assert logged["_id"].map(type).eq(str).all(), "ids are logged as strings"


def _in_process_config(tmp_path, **model: str) -> ServingConfig:
    return ServingConfig(
        port=free_port(),
        model={"name": MODEL, **(model or {"version": "1"})},
        reload_interval_s=RELOAD_INTERVAL_S,
        tracking_uri=os.environ["MLFLOW_TRACKING_URI"],
        admin_token=ADMIN_TOKEN,
        log={"database_url": f"sqlite:///{tmp_path / 'in-process.db'}"},
    )


def test_a_dead_log_writer_makes_ready_503_and_is_restarted(registered, tmp_path, monkeypatch):
    monkeypatch.setattr(log_writer, "RESTART_BACKOFF_S", 3.0)  # a window to see it dead
    row = request_rows(registered.holdout.head(1))[0]
    died = threading.Event()

    def explode_once(_written: int) -> None:  # a bug in the events hook kills the thread
        if not died.is_set():
            died.set()
            raise RuntimeError("injected failure in the writer thread")

    with in_process_service(_in_process_config(tmp_path)) as (service, url):
        service.writer.on_written = explode_once
        with httpx.Client(base_url=url, timeout=WAIT_S) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, "ready", WAIT_S)
            first = client.post("/predict", json=row)
            assert first.status_code == 200, "committed before the hook failed"
            assert died.wait(WAIT_S)
            ready = wait_for(
                lambda: (r := client.get("/ready")).status_code == 503 and r, "503", WAIT_S
            )
            assert "writer died" in ready.json()["detail"]
            assert metric(client, "zenloop_log_writer_alive") == 0
            refused = client.post("/predict", json=row)
            assert refused.status_code == 503, "no prediction without a log to hold it"
            wait_for(lambda: client.get("/ready").status_code == 200, "the restart", WAIT_S)
            assert metric(client, "zenloop_log_writer_restarts") == 1
            assert metric(client, "zenloop_log_writer_alive") == 1
            second = client.post("/predict", json=row)
            assert second.status_code == 200
        ids = service.store.request_ids()
    assert {first.json()["request_id"], second.json()["request_id"]} <= ids


def test_a_registry_outage_is_logged_once_and_serving_goes_on(
    registered, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    config = _in_process_config(tmp_path, alias="champion")  # followed: polled
    row = request_rows(registered.holdout.head(1))[0]
    registry = mlflow.get_tracking_uri()
    with (
        caplog.at_level(logging.WARNING, logger="api.service"),
        in_process_service(config) as (service, url),
        httpx.Client(base_url=url, timeout=WAIT_S) as client,
    ):
        wait_for(lambda: client.get("/ready").status_code == 200, "ready", WAIT_S)
        try:
            mlflow.set_tracking_uri(DEAD_REGISTRY)  # the registry goes away
            wait_for(lambda: metric(client, "zenloop_registry_errors_total") >= 3, "polls", WAIT_S)
            info = client.get("/model-info").json()
            assert client.post("/predict", json=row).status_code == 200, "serving goes on"
        finally:
            mlflow.set_tracking_uri(registry)
        assert info["version"] == "1" and info["registry"]["reachable"] is False
        assert info["registry"]["error"] and info["registry"]["since"]
        assert service.registry.delay_s > config.reload_interval_s, "polls back off"
        wait_for(
            lambda: client.get("/model-info").json()["registry"]["reachable"], "recovery", WAIT_S
        )
    messages = [r.getMessage() for r in caplog.records if r.name == "api.service"]
    assert len([m for m in messages if "registry unreachable" in m]) == 1, messages
    assert len([m for m in messages if "reachable again" in m]) == 1, messages
