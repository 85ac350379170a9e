"""The operations page's app in this process (FastAPI's TestClient): its JSON endpoints
read the monitor's records, refuse bad parameters by name, and guard the one write."""

import re

import pytest
from fastapi.testclient import TestClient

from monitoring.state_store import MonitorStore
from tests.support.serving import ADMIN_TOKEN, free_port
from ui.config import UiConfig
from ui.server import create_app
from zenloop.admin_token import ADMIN_TOKEN_ENV

REPORT = {"model_name": "m", "window_rows": 600, "drifted_share": 0.5, "drift": True}


@pytest.fixture
def page(tmp_path, monkeypatch):
    monkeypatch.setenv(ADMIN_TOKEN_ENV, ADMIN_TOKEN)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    store = MonitorStore(url)
    calm = store.record_check({**REPORT, "model_version": "1", "drift": False}, False, "calm", 1)
    trigger = store.record_check({**REPORT, "model_version": "1"}, True, "retrain: drift", 9)
    store.finish_retrain(store.start_retrain("m", trigger), True, "2", "v2 promoted and deployed")
    config = UiConfig(
        port=free_port(),
        service_url=f"http://127.0.0.1:{free_port()}",  # nothing answers there
        log_database_url=url,
        serving_config=None,
        tracking_uri="unused",
    )
    with TestClient(create_app(config)) as client:
        yield client, (calm, trigger)


def test_the_history_endpoints_read_the_monitors_records(page):
    client, (calm, trigger) = page
    assert client.get("/api/health").status_code == 200
    checks = client.get("/api/checks", params={"order": "oldest"}).json()
    assert [c["id"] for c in checks] == [calm, trigger]
    assert [c["decision"] for c in checks] == ["no drift", "retrain"]
    (retrain,) = client.get("/api/retrains").json()
    assert retrain["outcome"] == "promoted and deployed" and retrain["check_id"] == trigger
    summary = client.get("/api/summary").json()
    assert summary["service"]["ready"] is False, "the service is down: said, not an error"


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"order": "sideways"}])
def test_bad_parameters_are_422_naming_them(page, params):
    client, _ = page
    refused = client.get("/api/checks", params=params)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"][-1] == next(iter(params))


def test_the_one_write_needs_the_services_admin_token(page):
    client, _ = page
    assert client.post("/api/models/reload").status_code == 401
    wrong = client.post("/api/models/reload", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 403
    right = client.post("/api/models/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert right.status_code == 502, "the token passes; the service it forwards to is down"


def test_every_callback_input_is_in_the_layout_at_load(page):
    """Dash logs 'ID not found in layout' in the browser for a callback wired to an id the
    first layout lacks (the Predict button once was built only with the form)."""
    client, _ = page
    layout = client.get("/_dash-layout").text
    ids = set(re.findall(r'"id":\s*"([^"]+)"', layout))
    dependencies = client.get("/_dash-dependencies").json()
    wired = {
        item["id"]
        for callback in dependencies
        for item in [*callback["inputs"], *callback["state"]]
        if not item["id"].startswith("{")  # pattern-matching ids may match nothing
    }
    outputs = {
        part.split(".")[0].lstrip(".")
        for callback in dependencies
        for part in callback["output"].strip(".").split("...")
        if part and not part.startswith("{")
    }
    assert wired | outputs <= ids, (wired | outputs) - ids
    assert {"predict-button", "health-graph"} <= ids
