"""The prediction service as a real uvicorn process on 127.0.0.1, driven over HTTP."""

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from pydantic import ValidationError

from api.settings import ACKNOWLEDGE_ENV, MAX_BODY_BYTES_ENV, ServingConfig, ServingSettings
from monitoring.log_store import PredictionLogStore
from tests.support.serving import metric, register_models, running_service
from tests.support.waiting import wait_for
from zenloop.config import ConfigError, DataConfig
from zenloop.deployment import VALIDATED_TAG, request_rows
from zenloop.tracking import CHAMPION

MODEL = "serving-tests"
CLIENTS = 8
POLLS_WITHOUT_SWAP = 3  # an unvalidated champion must survive this many registry polls
REQUESTS_BEFORE_SWAP = 5  # each client serves this many before the new version is validated
SWAP_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def registered():
    return register_models(MODEL, DataConfig(n_rows=2_000, seed=21), ["xgboost", "random_forest"])


@pytest.fixture(scope="module")
def service(registered, tmp_path_factory):
    with running_service(tmp_path_factory.mktemp("serving"), MODEL) as service:
        service.wait_ready()
        yield service


def test_single_and_batch_predictions_equal_in_process_model(service, registered):
    rows = request_rows(registered.holdout.head(40))
    champion = registered.bundles["1"]
    expected = champion.predict_frame(pd.DataFrame(rows))["prediction"].to_numpy()
    with service.client() as client:
        single = [client.post("/predict", json=row).json() for row in rows[:10]]
        batch = client.post("/predict_batch", json={"rows": rows}).json()
    assert {s["model_version"] for s in single} == {"1"} and batch["model_version"] == "1"
    np.testing.assert_allclose([s["prediction"] for s in single], expected[:10], rtol=1e-5)
    np.testing.assert_allclose([p["prediction"] for p in batch["predictions"]], expected, rtol=1e-5)
    ids = [s["request_id"] for s in single] + [p["request_id"] for p in batch["predictions"]]
    assert len(set(ids)) == len(ids) == 50


def test_unseen_categories_and_optional_fields_still_predict(service, registered):
    row = request_rows(registered.holdout.head(1))[0] | {"city": "Atlantis", "seller_id": "S777777"}
    row.pop("customer_tenure_days")  # nullable in training: may be absent
    with service.client() as client:
        response = client.post("/predict", json=row)
    assert response.status_code == 200, response.text
    assert math.isfinite(response.json()["prediction"])


@pytest.mark.parametrize(
    ("change", "field", "kind"),
    [
        (lambda r: r.pop("unit_price"), "unit_price", "missing"),
        (lambda r: r.update(quantity="three"), "quantity", "float_type"),
        (lambda r: r.update(quantity="3"), "quantity", "float_type"),
        (lambda r: r.update(quantity=False), "quantity", "float_type"),
        (lambda r: r.update(quantity=1e200), "quantity", "less_than_equal"),
        (lambda r: r.update(order_ts=1700000000), "order_ts", "value_error"),
        (lambda r: r.update(category=["Books"]), "category", "string_type"),
        (lambda r: r.update(wormhole=1), "wormhole", "extra_forbidden"),
        (lambda r: r.update(order_ts="yesterday-ish"), "order_ts", "datetime"),
    ],
)
def test_bad_rows_get_422_naming_the_field(service, registered, change, field, kind):
    row = request_rows(registered.holdout.head(1))[0]
    change(row)
    with service.client() as client:
        single = client.post("/predict", json=row)
        batch = client.post(
            "/predict_batch", json={"rows": [request_rows(registered.holdout.head(1))[0], row]}
        )
    assert single.status_code == 422
    assert any(d["loc"] == ["body", field] and kind in d["type"] for d in single.json()["detail"])
    assert batch.status_code == 422
    assert any(d["loc"] == ["body", "rows", 1, field] for d in batch.json()["detail"])


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(service, registered, literal):
    row = request_rows(registered.holdout.head(1))[0]
    body = pd.io.json.ujson_dumps(row).replace(
        f'"discount":{row["discount"]}', f'"discount":{literal}'
    )
    assert literal in body
    with service.client() as client:
        response = client.post(
            "/predict", content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "discount"]


def test_malformed_bodies_are_422_not_500(service):
    with service.client() as client:
        assert client.post("/predict", content=b"{not json").status_code == 422
        assert client.post("/predict_batch", content=b"[1, 2]").status_code == 422
        assert client.post("/predict_batch", json={"rows": []}).status_code == 422
        schema = client.get("/openapi.json").json()
    batch = schema["paths"]["/predict_batch"]["post"]["requestBody"]["content"]
    assert batch["application/json"]["schema"]["properties"]["rows"]["minItems"] == 1


def test_batch_over_the_limit_is_413_with_the_limit(service, registered):
    rows = request_rows(registered.holdout.head(51))
    with service.client() as client:
        response = client.post("/predict_batch", json={"rows": rows})
    assert response.status_code == 413
    assert "limit of 50 rows" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/models/load?version=1"), ("post", "/models/reload"), ("post", "/feedback")],
)
def test_admin_endpoints_need_the_token(service, method, path):
    with service.client() as client:
        anonymous = client.request(
            method, path, json={"items": [{"request_id": "x", "ground_truth": 1}]}
        )
        wrong = client.request(method, path, headers={"Authorization": "Bearer nope"}, json={})
    assert anonymous.status_code == 401
    assert wrong.status_code == 403


def test_load_refuses_paths_and_unknown_versions(service):
    with service.client() as client:
        path = client.post("/models/load?alias=../../etc/passwd", headers=service.admin())
        unknown = client.post("/models/load?version=999", headers=service.admin())
    assert path.status_code == 422
    assert unknown.status_code == 404 and "999" in unknown.json()["detail"]


def test_log_holds_exactly_one_row_per_prediction_and_feedback_joins(service, registered):
    store = PredictionLogStore(f"sqlite:///{service.log_db}")
    rows = request_rows(registered.holdout.head(40))
    with service.client() as client:
        before = store.count()  # every earlier 200 is committed already
        with ThreadPoolExecutor(CLIENTS) as pool:
            singles = list(pool.map(lambda r: client.post("/predict", json=r), rows * 3))
            batches = list(
                pool.map(
                    lambda i: client.post("/predict_batch", json={"rows": rows[i : i + 10]}),
                    range(0, 40, 10),
                )
            )
        assert all(r.status_code == 200 for r in singles + batches)
        served = len(singles) + sum(len(b.json()["predictions"]) for b in batches)
        assert store.count() == before + served, "a 200 means the row is committed, once"

        ids = [r.json()["request_id"] for r in singles[:5]]
        truth = [{"request_id": rid, "ground_truth": 100.0 + i} for i, rid in enumerate(ids)]
        truth.append({"request_id": "never-served", "ground_truth": 1.0})
        response = client.post("/feedback", json={"items": truth}, headers=service.admin())
        bad = client.post(
            "/feedback",
            json={"items": [{"request_id": ids[0], "ground_truth": "x"}]},
            headers=service.admin(),
        )
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 5, "unknown_request_ids": ["never-served"]}
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == [
        "body",
        "items",
        0,
        "ground_truth",
    ]
    labelled = store.labelled_rows().set_index("request_id")
    assert labelled.loc[ids, "ground_truth"].tolist() == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert "unit_price" in labelled.columns


def test_metrics_and_docs(service):
    with service.client() as client:
        client.post("/predict", json={})
        metrics = client.get("/metrics").text
        schema = client.get("/openapi.json").json()
    assert 'zenloop_requests_total{endpoint="/predict",status="422"}' in metrics
    assert "zenloop_request_latency_seconds_bucket" in metrics
    assert "zenloop_log_pending_rows" in metrics and "zenloop_model_version_served 1.0" in metrics
    assert "unit_price" in schema["components"]["schemas"]["PredictRow"]["properties"]


def test_hot_swap_under_load_fails_no_request(service, registered):
    rows = request_rows(registered.holdout.head(20))
    stop_at = time.monotonic() + SWAP_TIMEOUT_S
    swapped = threading.Event()
    served = threading.Semaphore(0)  # one release per answered request

    def client_loop(worker: int) -> list[tuple[int, str | None]]:
        seen = []
        with service.client() as client:
            while time.monotonic() < stop_at and not swapped.is_set():
                response = client.post("/predict", json=rows[worker])
                seen.append((response.status_code, response.json().get("model_version")))
                served.release()
            # a few more after the swap: they must all see the new version
            for _ in range(REQUESTS_BEFORE_SWAP):
                response = client.post("/predict", json=rows[worker])
                seen.append((response.status_code, response.json().get("model_version")))
        return seen

    client = MlflowClient()
    with service.client() as http:
        polls = metric(http, "zenloop_registry_polls_total")
        client.set_registered_model_alias(MODEL, CHAMPION, "2")
        wait_for(
            lambda: metric(http, "zenloop_registry_polls_total") >= polls + POLLS_WITHOUT_SWAP,
            "registry polls",
            SWAP_TIMEOUT_S,
        )
        assert http.get("/model-info").json()["version"] == "1", "unvalidated: not followed"
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(client_loop, i) for i in range(CLIENTS)]
            for _ in range(CLIENTS * REQUESTS_BEFORE_SWAP):  # load is flowing on v1
                assert served.acquire(timeout=SWAP_TIMEOUT_S)
            client.set_model_version_tag(MODEL, "2", VALIDATED_TAG, "test")  # as deployment does
            wait_for(
                lambda: http.get("/model-info").json()["version"] == "2",
                "the swap to v2",
                SWAP_TIMEOUT_S,
            )
            swapped.set()
            results = [item for f in futures for item in f.result()]
    statuses = {status for status, _ in results}
    versions = [version for _, version in results]
    assert statuses == {200}, f"failed requests during the swap: {statuses}"
    assert "1" in versions
    assert "2" in versions, "the new champion was never served"
    for future in futures:  # each client's requests after the swap saw v2 only
        assert {v for _, v in future.result()[-REQUESTS_BEFORE_SWAP:]} == {"2"}
    with service.client() as client:
        info = client.get("/model-info").json()
    assert info["version"] == "2" and info["alias"] == "champion"


def test_clean_shutdown_drains_the_log(registered, tmp_path):
    """With queued acknowledgement, rows still queued at SIGTERM reach the log."""
    rows = request_rows(registered.holdout.head(10))
    with running_service(
        tmp_path,
        MODEL,
        log={
            "acknowledge": "queued",
            "database_url": f"sqlite:///{tmp_path / 'drain.db'}",
            "flush_interval_s": 30.0,
            "batch_rows": 100000,
        },
    ) as svc:
        svc.wait_ready()
        with svc.client() as client:
            served = sum(
                len(client.post("/predict_batch", json={"rows": rows}).json()["predictions"])
                for _ in range(30)
            )
        svc.stop()  # SIGTERM with rows still queued (the writer flushes every 30 s)
    assert PredictionLogStore(f"sqlite:///{tmp_path / 'drain.db'}").count() == served == 300


def _answers(client, requests: list[tuple[str, str, dict]]) -> list[tuple]:
    """Status, headers and body of each request, without what differs per answer."""
    out = []
    for method, path, kwargs in requests:
        response = client.request(method, path, **kwargs)
        body = response.json() if response.content else None
        for item in [body, *(body.get("predictions", []) if isinstance(body, dict) else [])]:
            if isinstance(item, dict):
                item.pop("request_id", None)
        headers = {k: v for k, v in response.headers.items() if k not in ("date", "location")}
        headers["location"] = httpx.URL(response.headers.get("location", "")).path
        out.append((method, path, response.status_code, headers, body))
    return out


def test_fast_path_answers_as_fastapi_routing_does(registered, tmp_path):
    """`fast_path: false` serves predictions through FastAPI's router: same answers."""
    rows = request_rows(registered.holdout.head(51))
    bad = rows[0] | {"quantity": "three", "wormhole": 1}
    requests = [
        ("POST", "/predict", {"json": rows[0]}),
        ("POST", "/predict_batch", {"json": {"rows": rows[:3]}}),
        ("POST", "/predict", {"json": bad}),
        ("POST", "/predict_batch", {"json": {"rows": [rows[0], bad]}}),
        ("POST", "/predict", {"content": b"{not json"}),
        ("POST", "/predict_batch", {"json": {"rows": rows}}),  # 51 rows: over the limit
        ("POST", "/predict", {"content": b" " * 70_000 + b"{}"}),  # over max_body_bytes
        ("GET", "/predict", {}),
        ("POST", "/predict/", {}),
        ("POST", "/predictions", {}),
    ]
    with running_service(tmp_path, MODEL, max_body_bytes=65_536, fast_path=False) as routed:
        routed.wait_ready()
        with routed.client() as client:
            expected = _answers(client, requests)
    with running_service(tmp_path, MODEL, max_body_bytes=65_536) as fast, fast.client() as client:
        fast.wait_ready()
        answers = _answers(client, requests)
        counted = metric(client, 'zenloop_requests_total{endpoint="/predict",status="200"}')
    assert answers == expected
    assert [a[2] for a in answers] == [200, 200, 422, 422, 422, 413, 413, 405, 307, 404]
    assert counted == 1  # the metrics middleware sees the fast path's requests


def test_not_ready_without_a_model(tmp_path):
    with running_service(tmp_path, "no-such-model") as svc, svc.client() as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        predict = client.post("/predict", json={})
    assert ready.status_code == 503 and predict.status_code == 503
    assert "no model is loaded" in predict.json()["detail"]


def test_acknowledgement_and_body_limit_come_from_the_config_and_the_environment_wins(
    monkeypatch,
):
    config = ServingConfig.model_validate(
        {"max_body_bytes": 4096, "log": {"acknowledge": "queued"}}
    )
    monkeypatch.delenv(ACKNOWLEDGE_ENV, raising=False)
    monkeypatch.delenv(MAX_BODY_BYTES_ENV, raising=False)
    settings = ServingSettings.resolve(config)
    assert (settings.acknowledge, settings.max_body_bytes, settings.durable) == (
        "queued",
        4096,
        False,
    )
    default = ServingSettings.resolve(ServingConfig(max_batch_rows=10))
    assert default.durable and default.max_body_bytes > 10 * 1_000
    monkeypatch.setenv(ACKNOWLEDGE_ENV, "committed")
    monkeypatch.setenv(MAX_BODY_BYTES_ENV, "100")
    overridden = ServingSettings.resolve(config)
    assert overridden.durable and overridden.max_body_bytes == 100
    monkeypatch.setenv(MAX_BODY_BYTES_ENV, "lots")
    with pytest.raises(ConfigError, match="ZENLOOP_MAX_BODY_BYTES"):
        ServingSettings.resolve(config)
    monkeypatch.setenv(MAX_BODY_BYTES_ENV, "100")
    monkeypatch.setenv(ACKNOWLEDGE_ENV, "never")
    with pytest.raises(ConfigError, match="ZENLOOP_LOG_ACKNOWLEDGE"):
        ServingSettings.resolve(config)
    with pytest.raises(ValidationError, match="acknowledge"):
        ServingConfig.model_validate({"log": {"acknowledge": "maybe"}})
