"""Several worker processes serve as one service: an admin load reaches every worker.

Against a real `zenloop serve` with two uvicorn workers on 127.0.0.1: each worker answers
/model-info with its pid, so the test sees which worker answered, on fresh connections
(the kernel hands them to either worker).
"""

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from mlflow.tracking import MlflowClient

from tests.support.serving import register_models, running_service
from zenloop.config import DataConfig
from zenloop.deployment import VALIDATED_TAG, request_rows

MODEL = "workers-tests"
WORKERS = 2
PROBES = 64  # fresh connections, enough to reach every worker
PROBE_THREADS = 8
SEE_EVERY_WORKER_S = 60.0


@pytest.fixture(scope="module")
def registered():
    registered = register_models(MODEL, DataConfig(n_rows=1_500, seed=5), ["linear", "xgboost"])
    MlflowClient().set_model_version_tag(MODEL, "2", VALIDATED_TAG, "test")
    return registered


def _served_by_worker(url: str) -> dict[int, set[str]]:
    """Worker pid -> the versions it answered with, over PROBES fresh connections."""

    def probe(_: int) -> tuple[int, str]:
        info = httpx.get(f"{url}/model-info", timeout=30).json()  # a new connection each
        return info["worker_pid"], info["version"]

    seen: dict[int, set[str]] = {}
    with ThreadPoolExecutor(PROBE_THREADS) as pool:
        for pid, version in pool.map(probe, range(PROBES)):
            seen.setdefault(pid, set()).add(version)
    return seen


def _every_worker_seen(url: str) -> dict[int, set[str]]:
    deadline = time.monotonic() + SEE_EVERY_WORKER_S
    while time.monotonic() < deadline:
        seen = _served_by_worker(url)
        if len(seen) == WORKERS:
            return seen
    raise AssertionError(f"fresh connections never reached all {WORKERS} workers")


def test_admin_loads_switch_every_worker_before_they_answer(registered, tmp_path):
    with running_service(tmp_path, MODEL, workers=WORKERS, reload_interval_s=600) as service:
        service.wait_ready()
        assert {v for versions in _every_worker_seen(service.url).values() for v in versions} == {
            "1"
        }

        with service.client() as client:
            loaded = client.post("/models/load?version=2", headers=service.admin())
            assert loaded.status_code == 200, loaded.text
            assert loaded.json()["workers_serving"] == WORKERS
            # at once: no worker still serves v1 once the load answered
            seen = _every_worker_seen(service.url)
            assert all(versions == {"2"} for versions in seen.values()), seen

            # predictions from any worker come from v2 and are logged by it
            rows = request_rows(registered.holdout.head(20))
            answers = [client.post("/predict", json=row) for row in rows]
            assert {a.status_code for a in answers} == {200}
            assert {a.json()["model_version"] for a in answers} == {"2"}

            back = client.post("/models/load?version=1", headers=service.admin())
            assert back.status_code == 200 and back.json()["workers_serving"] == WORKERS
            seen = _every_worker_seen(service.url)
            assert all(versions == {"1"} for versions in seen.values()), seen

            # a version no worker can load changes nothing anywhere
            missing = client.post("/models/load?version=999", headers=service.admin())
            assert missing.status_code == 404, missing.text
            seen = _every_worker_seen(service.url)
            assert all(versions == {"1"} for versions in seen.values()), seen
