"""Proof under load, against a real server on 127.0.0.1: nothing acknowledged is ever lost.

- 20,000 requests at concurrency 32, single rows and batches mixed, with ten hot swaps
  between two versions: no 5xx, every answer's version was live at that moment, and the
  log holds exactly the acknowledged predictions with their versions.
- SIGKILL of the service under load, then a restart: the database is intact and every
  acknowledged request id is in the log.
"""

import http.client
import json
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from mlflow.tracking import MlflowClient

from monitoring.log_store import PredictionLogStore, predictions
from tests.support.serving import register_models, running_service
from zenloop.config import DataConfig
from zenloop.deployment import VALIDATED_TAG, request_rows

MODEL = "load-tests"
REQUESTS = 20_000
CONCURRENCY = 32
SWAPS = 10
BATCH_EVERY = 10  # every tenth request is a batch
BATCH_ROWS = (2, 20)  # of between this many rows
CRASH_CONCURRENCY = 16
ACKNOWLEDGED_BEFORE_KILL = 1_500
WAIT_S = 60.0


@dataclass
class Answer:
    sent: float
    received: float
    status: int
    version: str | None
    request_ids: list[str]


@pytest.fixture(scope="module")
def registered():
    registered = register_models(
        MODEL, DataConfig(n_rows=2_000, seed=41), ["random_forest", "xgboost"]
    )
    MlflowClient().set_model_version_tag(MODEL, "2", VALIDATED_TAG, "test")
    return registered


class Client:
    """A keep-alive HTTP/1.1 connection with pre-encoded bodies: httpx costs the test
    process more CPU per request than the service spends on it."""

    def __init__(self, url: str, rows: list[dict]):
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=WAIT_S)
        self.singles = [json.dumps(row).encode() for row in rows]
        self.batches = {n: json.dumps({"rows": rows[:n]}).encode() for n in range(*BATCH_ROWS)}

    def request(self, i: int) -> Answer:
        """Request number i: a single row, or every BATCH_EVERY-th a batch."""
        batch = i % BATCH_EVERY == 0
        if batch:
            path, body = "/predict_batch", self.batches[BATCH_ROWS[0] + i % len(self.batches)]
        else:
            path, body = "/predict", self.singles[i % len(self.singles)]
        sent = time.monotonic()
        self.connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        answer = json.loads(response.read())
        received = time.monotonic()
        ids = []
        if response.status == 200:
            items = answer["predictions"] if batch else [answer]
            ids = [item["request_id"] for item in items]
        return Answer(sent, received, response.status, answer.get("model_version"), ids)

    def close(self) -> None:
        self.connection.close()


def _logged(db) -> dict[str, str]:
    """request id -> model version, straight from the database."""
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        query = sa.select(predictions.c.request_id, predictions.c.model_version)
        return dict(connection.execute(query).all())


def _live(answer: Answer, swaps: list[tuple[float, float, str]]) -> bool:
    """Was the answer's version possibly live while it was in flight?

    The first version is live until the first swap returns; swap i's version from when it
    was asked for until swap i+1 returned.
    """
    intervals = [(float("-inf"), swaps[0][1] if swaps else float("inf"), "1")]
    for i, (asked, _, version) in enumerate(swaps):
        until = swaps[i + 1][1] if i + 1 < len(swaps) else float("inf")
        intervals.append((asked, until, version))
    return any(
        version == answer.version and start <= answer.received and answer.sent <= end
        for start, end, version in intervals
    )


def test_load_with_hot_swaps_loses_nothing(registered, tmp_path):
    rows = request_rows(registered.holdout.head(50))
    done = 0
    progress = threading.Condition()
    swaps: list[tuple[float, float, str]] = []

    with running_service(tmp_path, MODEL, reload_interval_s=3600) as svc:
        svc.wait_ready()

        def worker(first: int) -> list[Answer]:
            nonlocal done
            answers, client = [], Client(svc.url, rows)
            for i in range(first, REQUESTS, CONCURRENCY):
                answers.append(client.request(i))
                with progress:
                    done += 1
                    progress.notify_all()
            client.close()
            return answers

        def swapper() -> None:
            with svc.client() as client:
                for k in range(SWAPS):  # spread over the load, by requests answered
                    with progress:
                        due = (k + 1) * REQUESTS // (SWAPS + 1)
                        assert progress.wait_for(lambda d=due: done >= d, WAIT_S)
                    version = "2" if k % 2 == 0 else "1"
                    asked = time.monotonic()
                    response = client.post(f"/models/load?version={version}", headers=svc.admin())
                    assert response.status_code == 200, response.text
                    swaps.append((asked, time.monotonic(), response.json()["model_version"]))

        with ThreadPoolExecutor(CONCURRENCY + 1) as pool:
            swapping = pool.submit(swapper)
            workers = [pool.submit(worker, i) for i in range(CONCURRENCY)]
            answers = [a for w in workers for a in w.result()]
            swapping.result()

    assert len(answers) == REQUESTS and len(swaps) == SWAPS
    statuses = {a.status for a in answers}
    assert statuses == {200}, f"failed requests: {statuses}"
    stale = [a for a in answers if not _live(a, swaps)]
    assert not stale, f"{len(stale)} answers from a version not live at the time"
    acknowledged = {rid: a.version for a in answers for rid in a.request_ids}
    assert _logged(svc.log_db) == acknowledged, "the log is exactly the acknowledged predictions"
    assert {a.version for a in answers} == {"1", "2"}


def test_sigkill_under_load_loses_no_acknowledged_prediction(registered, tmp_path):
    rows = request_rows(registered.holdout.head(50))
    db = tmp_path / "crash.db"
    log = {"database_url": f"sqlite:///{db}"}
    acknowledged: set[str] = set()
    lock = threading.Condition()
    killed = threading.Event()

    with running_service(tmp_path, MODEL, log=log) as svc:
        svc.wait_ready()

        def worker(first: int) -> None:
            client, i = Client(svc.url, rows), first
            while not killed.is_set():
                try:
                    answer = client.request(i)
                except (OSError, http.client.HTTPException):  # the server is gone
                    return
                if answer.status == 200:
                    with lock:
                        acknowledged.update(answer.request_ids)
                        lock.notify_all()
                i += CRASH_CONCURRENCY

        with ThreadPoolExecutor(CRASH_CONCURRENCY) as pool:
            futures = [pool.submit(worker, i) for i in range(CRASH_CONCURRENCY)]
            with lock:
                assert lock.wait_for(lambda: len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL, WAIT_S)
            svc.process.kill()  # SIGKILL mid-load: no drain, no spill
            svc.process.wait(WAIT_S)
            killed.set()
            for future in futures:
                future.result()

    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    missing = acknowledged - set(_logged(db))
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged predictions lost"

    with running_service(tmp_path, MODEL, log=log) as restarted:  # the same log, restarted
        restarted.wait_ready()
        with restarted.client() as client:
            assert client.post("/predict", json=rows[0]).status_code == 200
    assert acknowledged <= PredictionLogStore(f"sqlite:///{db}").request_ids()
