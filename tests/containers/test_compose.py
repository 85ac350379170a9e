"""The whole compose stack on the host network: PostgreSQL, MLflow, the ZenML server, the
service and the monitor, each in its container.

A model is registered into the compose MLflow server; the service in its container answers
/ready and predicts; after a restart of the service container the prediction log (in the
PostgreSQL volume) still holds the rows logged before. The ZenML server answers its health
check, and the monitor's health shows it reading that PostgreSQL log.
"""

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.containers import project_image  # noqa: F401  (fixture)
from tests.support.pipelines import run_config
from tests.support.serving import ADMIN_TOKEN, Registered, free_port, register_models
from zenloop.config import DataConfig
from zenloop.deployment import request_rows

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker" / "compose.yaml"
MODEL = "composed"
UP_TIMEOUT_S = 240.0


def _wait(url: str, timeout: float = UP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} did not answer 200")


@pytest.fixture(scope="module")
def compose(project_image, tmp_path_factory):  # noqa: F811
    folder = tmp_path_factory.mktemp("compose")
    ports = {name: free_port() for name in ("pg", "mlflow", "zenml", "api", "monitor")}
    log_url = f"postgresql+psycopg://zenloop@127.0.0.1:{ports['pg']}/zenloop"
    serving = folder / "serving.yaml"
    serving.write_text(
        yaml.safe_dump(
            {
                "port": ports["api"],
                "model": {"name": MODEL},
                "tracking_uri": f"http://127.0.0.1:{ports['mlflow']}",
                "reload_interval_s": 1.0,
                "log": {"database_url": log_url},
                "events": {"url": f"http://127.0.0.1:{ports['monitor']}/events"},
            }
        )
    )
    monitoring = run_config(  # the log and the event port are the serving file's
        folder / "monitoring.yaml",
        {
            "model_name": MODEL,
            "serving_config": "/etc/zenloop/serving.yaml",  # where compose mounts it
            "heartbeat_interval_s": 1.0,
        },
        MODEL,
        key="monitor",
    )
    env = {
        **os.environ,
        "ZENLOOP_PG_PORT": str(ports["pg"]),
        "ZENLOOP_MLFLOW_PORT": str(ports["mlflow"]),
        "ZENLOOP_ZENML_PORT": str(ports["zenml"]),
        "ZENLOOP_ADMIN_TOKEN": ADMIN_TOKEN,
        "ZENLOOP_SERVING_CONFIG": str(serving),
        "ZENLOOP_MONITORING_CONFIG": str(monitoring),
    }
    project = ["docker-compose", "-p", f"zenloop-test-{ports['api']}", "-f", str(COMPOSE_FILE)]

    def compose_run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([*project, *args], env=env, capture_output=True, text=True)
        assert not check or result.returncode == 0, result.stderr[-3000:]
        return result

    compose_run("up", "-d", "--build", "postgres", "mlflow")
    try:
        mlflow_url = f"http://127.0.0.1:{ports['mlflow']}"
        _wait(f"{mlflow_url}/health")
        saved = os.environ.get("MLFLOW_TRACKING_URI")
        os.environ["MLFLOW_TRACKING_URI"] = mlflow_url
        try:
            registered = register_models(MODEL, DataConfig(n_rows=1_500, seed=41), ["linear"])
        finally:
            os.environ["MLFLOW_TRACKING_URI"] = saved or ""
        compose_run("up", "-d")  # the rest: the ZenML server, the service, the monitor
        yield Compose(
            compose_run,
            f"http://127.0.0.1:{ports['api']}",
            f"http://127.0.0.1:{ports['zenml']}",
            f"http://127.0.0.1:{ports['monitor']}/health",
            registered,
        )
    finally:
        logs = compose_run("logs", "--tail", "50", check=False).stdout
        compose_run("down", "-v", check=False)
        print(logs[-3000:])


@dataclass
class Compose:
    run: Callable[..., subprocess.CompletedProcess]
    url: str
    zenml: str
    monitor_health: str
    registered: Registered


def _predict(compose: Compose, rows: int) -> int:
    """Predicts `rows` holdout rows; returns how many rows the log holds afterwards."""
    _wait(f"{compose.url}/ready")
    sent = request_rows(compose.registered.holdout.head(rows))
    response = httpx.post(f"{compose.url}/predict_batch", json={"rows": sent}, timeout=30)
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == len(sent)
    return _logged_rows(compose.run)


def test_the_service_container_predicts_and_keeps_its_log_across_a_restart(compose):
    before = _predict(compose, 20)
    assert before >= 20
    compose.run("restart", "service")
    _wait(f"{compose.url}/ready")
    assert _logged_rows(compose.run) == before, "the prediction log survives a restart"


def test_the_zenml_server_and_the_monitor_come_up_on_the_postgresql_log(compose):
    _wait(f"{compose.zenml}/health")
    logged = _predict(compose, 10)
    _wait(compose.monitor_health)
    deadline = time.monotonic() + UP_TIMEOUT_S
    log: dict = {}
    while time.monotonic() < deadline and log.get("last_id", 0) < logged:
        log = httpx.get(compose.monitor_health, timeout=5).json().get("log", {})
        time.sleep(1)
    assert log.get("database", "").startswith("postgresql"), log
    assert "error" not in log and log["last_id"] >= logged, log


def _logged_rows(compose_run) -> int:
    deadline = time.monotonic() + 20
    count = 0
    while time.monotonic() < deadline:
        result = compose_run(
            "exec", "-T", "postgres", "sh", "-c",
            'psql -h 127.0.0.1 -p "$PGPORT" -U zenloop -tAc "select count(*) from predictions"',
            check=False,
        )  # fmt: skip
        if result.returncode == 0 and (count := int(result.stdout.strip() or 0)) > 0:
            return count
        time.sleep(1)
    return count
