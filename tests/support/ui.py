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
import numpy as np
import pandas as pd
import yaml
from mlflow.tracking import MlflowClient

from monitoring.drift import check_drift
from monitoring.log_store import GROUND_TRUTH_COLUMN, PredictionLogStore, PredictionRecord
from monitoring.state_store import MonitorStore, RetrainErrors, checks, retrains
from tests.support.serving import ADMIN_TOKEN, Registered, free_port
from zenloop.config import DriftConfig
from zenloop.data.generator import CLASSIFICATION_TARGET, REGRESSION_TARGET, generate_orders
from zenloop.deployment import VALIDATED_TAG
from zenloop.tracking import CHAMPION

PAGE_START_TIMEOUT_S = 120.0
WINDOW_ROWS = 1_000
DRIFT_SCENARIO = "promotion_season"
REFERENCE_SEED = 99
REFERENCE_ROWS = 3_000
# seconds before "now" of each recorded event: calm traffic and two calm checks, drifted
# traffic and two drifted checks (the second triggers), the retraining, then two checks of
# the new version
LOGGED_ROWS = 100  # rows of each period in the prediction log, one a second
TIMELINE = {
    "calm_traffic": 1000,
    "calm": (900, 780),
    "drifted_traffic": 670,
    "drifted": (660, 600),
    "retrain_started": 590,
    "retrain_finished": 480,
    "after": (360, 240),
}


@dataclass
class History:
    check_ids: list[int]
    retrain_id: int
    onset_at: float  # the first drifted row logged
    finished_at: float
    errors: RetrainErrors  # both models on the drifted window's labelled rows
    logged_rows: int  # rows it put in the prediction log


def _window(model, seed: int, scenario: str | None, rows: int = WINDOW_ROWS) -> pd.DataFrame:
    orders = generate_orders(rows, seed=seed, scenario=scenario)
    features = orders.drop(columns=[REGRESSION_TARGET, CLASSIFICATION_TARGET])
    predicted = model.predict_frame(features)["prediction"].to_numpy()
    return features.assign(prediction=predicted, **{GROUND_TRUTH_COLUMN: orders[REGRESSION_TARGET]})


def _log(log: PredictionLogStore, version: str, start_at: float) -> int:
    """`LOGGED_ROWS` predictions of `version`, one a second from `start_at`; the last id."""
    log.append(
        [
            PredictionRecord(f"v{version}-{start_at:.0f}-{i}", start_at + i, version, {}, 0.0)
            for i in range(LOGGED_ROWS)
        ]
    )
    return log.last_id()


def _rmse(predicted, truth) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted) - np.asarray(truth)) ** 2)))


def _record(
    store: MonitorStore, report: dict, retrain: bool, reason: str, at: float, last_log_id: int
) -> int:
    check_id = store.record_check(report, retrain, reason, last_log_id)
    with store.engine.begin() as connection:  # placed on the timeline
        connection.execute(checks.update().where(checks.c.id == check_id), {"checked_at": at})
    return check_id


def write_history(registered: Registered, log_db: Path) -> History:
    """Real drift reports for v1 (calm, drifted, trigger), a retrain that deployed v2,
    and v2's checks after it, as the monitor records them."""
    store = MonitorStore(f"sqlite:///{log_db}")
    log = PredictionLogStore(f"sqlite:///{log_db}")
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
    calm_id = _log(log, "1", now - TIMELINE["calm_traffic"])
    ids = [_record(store, calm, False, "no drift", now - ago, calm_id) for ago in TIMELINE["calm"]]
    first, second = TIMELINE["drifted"]
    drifted = report(old, "1", 20, DRIFT_SCENARIO, reference_old)
    drifted_id = _log(log, "1", now - TIMELINE["drifted_traffic"])
    ids.append(_record(store, drifted, False, "drift in 1/2 windows", now - first, drifted_id))
    ids.append(_record(store, drifted, True, "retrain: drift in 2/2", now - second, drifted_id))
    retrain_id = store.start_retrain(name, ids[-1])
    finished = now - TIMELINE["retrain_finished"]
    summary = "v2 promoted and deployed: candidate beats champion on recent data"
    labelled = _window(old, 40, DRIFT_SCENARIO)
    features = labelled.drop(columns=["prediction", GROUND_TRUTH_COLUMN])
    truth = labelled[GROUND_TRUTH_COLUMN]
    errors = RetrainErrors(
        metric="rmse",
        before=_rmse(labelled["prediction"], truth),
        after=_rmse(new.predict_frame(features)["prediction"], truth),
        rows=len(labelled),
    )
    store.finish_retrain(retrain_id, True, "2", summary, errors=errors)
    with store.engine.begin() as connection:
        connection.execute(
            retrains.update().where(retrains.c.id == retrain_id),
            {"started_at": now - TIMELINE["retrain_started"], "finished_at": finished},
        )
    after = report(new, "2", 30, DRIFT_SCENARIO, reference_new)
    after_id = _log(log, "2", finished)
    for ago in TIMELINE["after"]:
        ids.append(_record(store, after, False, "no drift on v2", now - ago, after_id))
    onset = now - TIMELINE["drifted_traffic"]
    return History(ids, retrain_id, onset, finished, errors, log.count())


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
