"""A served model with a drift -> retrain history behind it, and a real page process.

The history is what the loop records (real Evidently checks on normal and drifted
traffic, written to the log database with the monitor's own tables), placed on a
timeline of minutes; the served model is a real service that then moves to the
retrained version. Running the whole loop would take minutes; this takes seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import yaml
from mlflow.tracking import MlflowClient

from monitoring.drift import check_drift
from monitoring.log_store import GROUND_TRUTH_COLUMN
from monitoring.state_store import MonitorStore, checks, retrains
from tests.serving_support import ADMIN_TOKEN, Registered, free_port
from zenloop.config import DriftConfig
from zenloop.data.generator import CLASSIFICATION_TARGET, REGRESSION_TARGET, generate_orders
from zenloop.deployment import VALIDATED_TAG
from zenloop.tracking import CHAMPION

PAGE_START_TIMEOUT_S = 120.0
WINDOW_ROWS = 1_000
DRIFT_SCENARIO = "promotion_season"
REFERENCE_SEED = 99
REFERENCE_ROWS = 3_000
# seconds before "now" of each recorded event: two calm checks, two drifted ones (the second
# triggers), the retraining, then two checks of the new version
TIMELINE = {
    "calm": (900, 780),
    "drifted": (660, 600),
    "retrain_started": 590,
    "retrain_finished": 480,
    "after": (360, 240),
}


@dataclass
class History:
    check_ids: list[int]
    retrain_id: int
    onset_at: float
    finished_at: float


def _window(model, seed: int, scenario: str | None, rows: int = WINDOW_ROWS) -> pd.DataFrame:
    orders = generate_orders(rows, seed=seed, scenario=scenario)
    features = orders.drop(columns=[REGRESSION_TARGET, CLASSIFICATION_TARGET])
    predicted = model.predict_frame(features)["prediction"].to_numpy()
    return features.assign(prediction=predicted, **{GROUND_TRUTH_COLUMN: orders[REGRESSION_TARGET]})


def _record(store: MonitorStore, report: dict, retrain: bool, reason: str, at: float) -> int:
    check_id = store.record_check(report, retrain, reason)
    with store.engine.begin() as connection:  # placed on the timeline
        connection.execute(checks.update().where(checks.c.id == check_id), {"checked_at": at})
    return check_id


def write_history(registered: Registered, log_db: Path) -> History:
    """Real drift reports for v1 (calm, drifted, trigger), a retrain that deployed v2,
    and v2's checks after it, as the monitor records them."""
    store = MonitorStore(f"sqlite:///{log_db}")
    now = time.time()
    old, new = registered.bundles["1"], registered.bundles["2"]
    name = registered.name

    def report(model, version: str, seed: int, scenario: str | None, reference) -> dict:
        window = _window(model, seed, scenario)
        result = check_drift(
            name, version, window, reference, model.schema, model.metrics["test"],
            DriftConfig(), with_html=False,
        )  # fmt: skip
        return result.report.model_dump(mode="json")

    # each model's reference: the traffic it was trained for, with its own predictions
    reference_old = _window(old, REFERENCE_SEED, None, REFERENCE_ROWS).drop(
        columns=GROUND_TRUTH_COLUMN
    )
    reference_new = _window(new, REFERENCE_SEED, DRIFT_SCENARIO, REFERENCE_ROWS).drop(
        columns=GROUND_TRUTH_COLUMN
    )
    calm = report(old, "1", 10, None, reference_old)
    ids = [_record(store, calm, False, "no drift", now - ago) for ago in TIMELINE["calm"]]
    first, second = TIMELINE["drifted"]
    drifted = report(old, "1", 20, DRIFT_SCENARIO, reference_old)
    ids.append(_record(store, drifted, False, "drift seen in 1/2 windows", now - first))
    ids.append(_record(store, drifted, True, "retrain: drift in 2/2 windows", now - second))
    retrain_id = store.start_retrain(name, ids[-1])
    finished = now - TIMELINE["retrain_finished"]
    summary = "v2 promoted and deployed: candidate beats champion on recent data"
    store.finish_retrain(retrain_id, True, "2", summary)
    with store.engine.begin() as connection:
        connection.execute(
            retrains.update().where(retrains.c.id == retrain_id),
            {"started_at": now - TIMELINE["retrain_started"], "finished_at": finished},
        )
    after = report(new, "2", 30, DRIFT_SCENARIO, reference_new)
    for ago in TIMELINE["after"]:
        ids.append(_record(store, after, False, "no drift on the new champion", now - ago))
    return History(ids, retrain_id, now - first, finished)


def serve_retrained(registered: Registered, service_url: str) -> None:
    """Move the champion alias to v2 (validated, as deployment does) and reload now."""
    client = MlflowClient()
    client.set_model_version_tag(registered.name, "2", VALIDATED_TAG, "test")
    client.set_registered_model_alias(registered.name, CHAMPION, "2")
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    response = httpx.post(f"{service_url}/models/reload", headers=headers, timeout=60)
    assert response.status_code == 200 and response.json()["model_version"] == "2", response.text


@dataclass
class Page:
    url: str
    process: subprocess.Popen


@contextmanager
def running_page(tmp: Path, service_url: str, log_db: Path, **overrides):
    """`zenloop ui -c <file>` as a user starts it, on a free port."""
    port = free_port()
    config = {
        "port": port,
        "service_url": service_url,
        "log_database_url": f"sqlite:///{log_db}",
        "refresh_s": 1,
        "traffic_sample_s": 0.5,
        "tracking_uri": os.environ["MLFLOW_TRACKING_URI"],
        "mlflow_url": "http://127.0.0.1:5999",  # links only; nothing needs to answer
        "zenml_url": "http://127.0.0.1:8299",
        **overrides,
    }
    path = tmp / f"ui-{port}.yaml"
    path.write_text(yaml.safe_dump(config))
    log = tmp / f"ui-{port}.log"
    env = {**os.environ, "ZENLOOP_ADMIN_TOKEN": ADMIN_TOKEN}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "ui", "-c", str(path)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        page = Page(f"http://127.0.0.1:{port}", process)
        try:
            deadline = time.monotonic() + PAGE_START_TIMEOUT_S
            while time.monotonic() < deadline:
                assert process.poll() is None, log.read_text()[-3000:]
                try:
                    if httpx.get(f"{page.url}/api/health", timeout=1.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.3)
            else:
                raise AssertionError("the page did not start: " + log.read_text()[-3000:])
            yield page
        finally:
            process.terminate()
            process.wait(30)
