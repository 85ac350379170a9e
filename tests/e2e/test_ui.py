"""The operations page's read-only endpoints, against a real page process and a real service.

Shapes, ordering and limits of /api/*, the admin token on the one endpoint that changes
anything, and the same history in `zenloop status` (it reads the database, not a process).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from zenml.client import Client
from zenml.enums import VisualizationType
from zenml.materializers.materializer_registry import materializer_registry

from api.settings import ServingConfig
from materializers import DriftHistoryMaterializer
from monitoring.policy import Decision
from monitoring.state_store import MonitorStore
from steps.monitoring import plot_drift_history
from tests.support.serving import (
    ADMIN_TOKEN,
    free_port,
    in_process_service,
    register_models,
    running_service,
)
from tests.support.ui import running_page, serve_retrained, write_history
from tests.support.waiting import wait_for
from ui.traffic import TrafficSampler, bucket_quantile, parse_metrics, traffic_point
from zenloop.config import DataConfig, MonitorConfig
from zenloop.deployment import request_rows
from zenloop.history_plots import DriftHistory

MODEL = "ui-tests"
PREDICTIONS = 30
TRAFFIC_WAIT_S = 20.0
UNREGISTERED = "ui-tests-never-registered"  # a service that starts with no model
PROBES = 3  # /ready and /model-info asked this often while it has none
SAMPLER_INTERVAL_S = 0.5
SAMPLES_KEPT = 10
HTTP_TIMEOUT_S = 30.0
UNPROCESSABLE, NOT_READY = 422, 503
PNG_MAGIC = b"\x89PNG"


@pytest.fixture(scope="module")
def registered():
    return register_models(MODEL, DataConfig(n_rows=2_000, seed=5), ["xgboost", "random_forest"])


@pytest.fixture(scope="module")
def setup(registered, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui")
    tracking = os.environ["MLFLOW_TRACKING_URI"]  # no stack needed
    with running_service(tmp, MODEL, tracking_uri=tracking) as service:
        history = write_history(registered, service.log_db)
        serve_retrained(registered, service.url)
        with running_page(tmp, service.url, service.log_db) as page:
            rows = request_rows(registered.holdout.head(PREDICTIONS))
            with service.client() as client:
                for row in rows:
                    assert client.post("/predict", json=row).status_code == 200
            yield service, page, history, tmp


def _get(page, path: str, **params):
    response = httpx.get(f"{page.url}{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_summary_shows_the_served_model_versions_and_links(setup):
    _, page, history, _ = setup
    summary = _get(page, "/api/summary")
    model = summary["model"]
    assert summary["service"]["ready"] and model["version"] == "2"
    assert model["alias"] == "champion" and model["family"] == "random_forest"
    assert model["training_metrics"]["test"]["rmse"] > 0 and model["feature_schema"]
    versions = {v["version"]: v for v in summary["versions"]}
    assert versions["2"]["serving"] and versions["2"]["aliases"] == ["champion"]
    assert not versions["1"]["serving"]
    assert summary["monitor"]["latest_check"]["id"] == history.check_ids[-1]
    assert summary["monitor"]["latest_retrain"]["outcome"] == "promoted and deployed"
    assert summary["links"]["mlflow_ui"] == "http://127.0.0.1:5999"
    assert summary["links"]["zenml_dashboard"] == "http://127.0.0.1:8299"
    assert summary["links"]["service_docs"].endswith("/docs")


def test_drift_has_one_row_per_monitored_column(setup):
    _, page, history, _ = setup
    check = _get(page, "/api/drift")["check"]
    assert check["id"] == history.check_ids[-1] and check["model_version"] == "2"
    names = [c["column"] for c in check["columns"]]
    assert "unit_price" in names and len(names) == len(set(names))
    for column in check["columns"]:
        assert {"kind", "method", "score", "threshold", "drifted"} <= set(column)
    assert check["monitored_columns"] + 1 == len(check["columns"])  # + the prediction


def test_checks_are_ordered_and_limited(setup):
    _, page, history, _ = setup
    newest = _get(page, "/api/checks", limit=3)
    assert [c["id"] for c in newest] == sorted(history.check_ids, reverse=True)[:3]
    everything = _get(page, "/api/checks", order="oldest")
    assert [c["id"] for c in everything] == sorted(history.check_ids)
    decisions = [c["decision"] for c in everything]
    assert decisions == ["no drift", "no drift", "drift", "retrain", "no drift", "no drift"]
    assert everything[3]["drifted_share"] > everything[0]["drifted_share"]
    assert everything[3]["performance"]["metric"] == "rmse"
    for bad in ({"limit": 0}, {"limit": 1001}, {"order": "sideways"}):
        assert httpx.get(f"{page.url}/api/checks", params=bad).status_code == 422


def test_retraining_entry_joins_trigger_onset_and_errors(setup):
    _, page, history, _ = setup
    (retrain,) = _get(page, "/api/retrains", limit=5)
    assert retrain["id"] == history.retrain_id and retrain["deployed_version"] == "2"
    assert retrain["outcome"] == "promoted and deployed"
    assert retrain["trigger"]["reason"].startswith("retrain")
    assert retrain["onset_at"] == pytest.approx(history.onset_at)
    expected = history.finished_at - history.onset_at
    assert retrain["onset_to_serving_s"] == pytest.approx(expected)
    assert retrain["error_metric"] == "rmse" and retrain["error_rows"] == history.errors.rows
    assert retrain["error_before"] == pytest.approx(history.errors.before)
    assert retrain["error_after"] == pytest.approx(history.errors.after)
    assert retrain["error_after"] < retrain["error_before"], "v2 is better on the drifted rows"
    both = _get(page, "/api/history", limit=2, order="oldest")
    assert [c["id"] for c in both["checks"]] == sorted(history.check_ids)[-2:]
    assert both["retrains"][0]["id"] == history.retrain_id


def test_traffic_from_metrics_and_the_prediction_log(setup):
    _, page, history, _ = setup
    expected_logged = PREDICTIONS + history.logged_rows  # the history's own rows are logged too
    deadline = time.monotonic() + TRAFFIC_WAIT_S
    while time.monotonic() < deadline:
        traffic = _get(page, "/api/traffic", limit=500)
        logged = sum(m["predictions"] for m in traffic["logged_per_minute"])
        served = (traffic["totals"] or {}).get("prediction_requests", 0)
        if logged >= expected_logged and served >= PREDICTIONS:
            break
        time.sleep(0.5)
    assert logged == expected_logged and served == PREDICTIONS, traffic
    assert any(s["requests"] > 0 and s["p50_ms"] is not None for s in traffic["samples"])
    times = [s["at"] for s in traffic["samples"]]
    assert times == sorted(times)
    assert len(_get(page, "/api/traffic", limit=1)["samples"]) <= 1
    assert "pending_rows" in traffic["totals"]["log"]


def test_a_real_bad_request_is_a_4xx_on_the_page(setup, registered):
    service, page, _, _ = setup
    before = wait_for(
        lambda: _get(page, "/api/traffic", limit=1)["totals"], "a sample", TRAFFIC_WAIT_S
    )
    row = request_rows(registered.holdout.head(1))[0]
    with service.client() as client:
        assert client.get("/ready").status_code == 200
        bad = client.post("/predict", json={**row, "unit_price": "not a number"})
    assert bad.status_code == UNPROCESSABLE, bad.text
    expected = before["client_errors"] + 1
    totals = wait_for(
        lambda: (
            (t := _get(page, "/api/traffic", limit=1)["totals"])["client_errors"] >= expected and t
        ),
        "the 422 on the page",
        TRAFFIC_WAIT_S,
    )
    assert totals["client_errors"] == expected
    assert totals["server_errors"] == before["server_errors"]


def test_the_503s_of_a_starting_service_probes_are_not_errors(tmp_path):
    """A real service with no model yet: /ready and /model-info answer 503, as they should
    while it starts; the page's sampler counts none of them. A /predict then is a 503 of
    a real request, and is counted."""
    config = ServingConfig(
        port=free_port(),
        model={"name": UNREGISTERED, "version": "1"},
        tracking_uri=os.environ["MLFLOW_TRACKING_URI"],
        admin_token=ADMIN_TOKEN,
        log={"database_url": f"sqlite:///{tmp_path / 'starting.db'}"},
    )
    with (
        in_process_service(config) as (_, url),
        httpx.Client(base_url=url, timeout=HTTP_TIMEOUT_S) as client,
    ):
        for _ in range(PROBES):
            assert client.get("/ready").status_code == NOT_READY
            assert client.get("/model-info").status_code == NOT_READY
        sampler = TrafficSampler(f"{url}/metrics", SAMPLER_INTERVAL_S, SAMPLES_KEPT, HTTP_TIMEOUT_S)
        sampler.sample_once()
        starting = sampler.latest()
        assert starting is not None, sampler.last_error
        assert (starting.client_errors, starting.server_errors) == (0, 0)
        assert client.post("/predict", json={"unit_price": 1.0}).status_code == NOT_READY
        sampler.sample_once()
        assert (sampler.latest().client_errors, sampler.latest().server_errors) == (0, 1)


def test_nothing_changes_state_without_the_admin_token(setup):
    _, page, _, _ = setup
    url = f"{page.url}/api/models/reload"
    assert httpx.post(url).status_code == 401
    assert httpx.post(url, headers={"Authorization": "Bearer wrong"}).status_code == 403
    with_token = httpx.post(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60)
    assert with_token.status_code == 200 and with_token.json()["model_version"] == "2"
    for path in ("/api/summary", "/api/checks", "/api/history", "/api/traffic", "/api/drift"):
        for method in ("POST", "PUT", "DELETE"):
            assert httpx.request(method, f"{page.url}{path}").status_code == 405, (method, path)
    spec = _get(page, "/api/openapi.json")
    writes = [
        (path, method) for path, item in spec["paths"].items() for method in item if method != "get"
    ]
    assert writes == [("/api/models/reload", "post")]


def test_status_shows_the_loops_history(setup):
    service, _, _, tmp = setup
    path = tmp / "status-serving.yaml"
    port = service.url.rsplit(":", 1)[1]
    path.write_text(
        yaml.safe_dump({"port": int(port), "log": {"database_url": f"sqlite:///{service.log_db}"}})
    )
    result = subprocess.run(
        [sys.executable, "-m", "ops.cli", "status", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "serving ui-tests v2" in result.stdout
    assert "last check" in result.stdout and "no drift on v2" in result.stdout
    assert "last retraining" in result.stdout and "promoted and deployed" in result.stdout
    assert "labelled rows, held out:" in result.stdout


METRICS = """# TYPE zenloop_requests_total counter
zenloop_requests_total{endpoint="/predict",status="200"} 10.0
zenloop_requests_total{endpoint="/predict",status="422"} 2.0
zenloop_requests_total{endpoint="/metrics",status="200"} 5.0
zenloop_requests_total{endpoint="/predict_batch",status="503"} 1.0
zenloop_requests_total{endpoint="/ready",status="503"} 7.0
zenloop_requests_total{endpoint="/model-info",status="503"} 4.0
zenloop_requests_total{endpoint="/health",status="500"} 1.0
zenloop_requests_total{endpoint="other",status="404"} 1.0
# TYPE zenloop_request_latency_seconds histogram
zenloop_request_latency_seconds_bucket{endpoint="/predict",le="0.001"} 4.0
zenloop_request_latency_seconds_bucket{endpoint="/predict",le="0.01"} 12.0
zenloop_request_latency_seconds_bucket{endpoint="/predict",le="+Inf"} 12.0
# TYPE zenloop_log_pending_rows gauge
zenloop_log_pending_rows 3.0
"""


def test_metrics_parsing_and_rates_without_a_service():
    before = parse_metrics(METRICS, at=100.0)
    # the probes' 503s while starting are not errors; a 404 on an unknown path is
    assert (before.requests, before.client_errors, before.server_errors) == (13, 3, 1)
    assert before.log == {"pending_rows": 3.0}
    assert bucket_quantile(0.5, before.buckets) == pytest.approx(0.001 + 0.009 * 2 / 8)
    later = METRICS.replace('status="200"} 10.0', 'status="200"} 30.0')
    point = traffic_point(before, parse_metrics(later, at=110.0))
    assert point["requests_per_s"] == pytest.approx(2.0) and point["log_backlog"] == 3.0
    assert point["p50_ms"] is None  # no new latency observations in between


def test_monitoring_step_stores_the_drift_history_plot(tmp_path):
    """The step's function on a database with checks and a retrain; our materializer
    saves its PNG as an IMAGE visualization and loads it back."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    store = MonitorStore(url)
    report = {"model_name": MODEL, "window_rows": 500, "drifted_share": 0.0, "drift": False}
    store.record_check({**report, "model_version": "1"}, False, "no drift")
    trigger = store.record_check(
        {**report, "model_version": "1", "drifted_share": 0.4, "drift": True}, True, "retrain"
    )
    store.finish_retrain(store.start_retrain(MODEL, trigger), True, "2", "v2 promoted")
    store.record_check({**report, "model_version": "2"}, False, "no drift")
    monitor = MonitorConfig(model_name=MODEL, log_database_url=url)
    decision = Decision(
        retrain=False, reason="no drift", decided_at=0.0, model_version="2",
        consecutive_drifted=0, new_rows=0,
    )  # fmt: skip
    history = plot_drift_history.entrypoint(decision, monitor)
    assert [c.decision for c in history.checks] == ["no drift", "retrain", "no drift"]
    assert [version for _, version in history.went_live] == ["2"]
    assert history.png.startswith(PNG_MAGIC)
    assert materializer_registry[DriftHistory] is DriftHistoryMaterializer
    store_root = Path(Client().active_stack.artifact_store.path) / "ui-tests-drift-history"
    store_root.mkdir(parents=True, exist_ok=True)
    materializer = DriftHistoryMaterializer(str(store_root))
    materializer.save(history)
    views = materializer.save_visualizations(history)
    assert VisualizationType.IMAGE in views.values()
    loaded = materializer.load(DriftHistory)
    assert loaded.checks == history.checks and loaded.png == history.png
