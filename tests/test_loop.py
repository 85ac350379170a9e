"""The whole loop on small data: real service, real monitor, real retraining processes."""

import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
import yaml

from monitoring.policy import monitor_dir
from ops.monitor_service import read_heartbeat
from ops.replay import replay
from ops.retrain_runner import RetrainOutcome
from tests.pipeline_support import BIN, run_command, run_config, stack_up
from tests.serving_support import free_port
from zenloop.admin_token import resolve_admin_token
from zenloop.data.generator import generate_orders

pytestmark = pytest.mark.slow
TARGET = "order_total"
WAIT_S = 240.0
# enough drifted traffic to outlast WAIT_S: if a first retrain loses (drift seen while the
# window was still mostly normal rows), later windows must still arrive to retrain again
DRIFT_ROWS = 40_000


def _training(gates: dict) -> dict:
    return {
        "data": {"n_rows": 3000, "seed": 11},
        "candidates": [{"name": "xgboost", "family": "xgboost", "params": {"n_estimators": 60}}],
        "gates": gates,
        "reference": {"sample_size": 1000},
    }


@dataclass
class Loop:
    url: str
    token: str


def _wait(condition, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def loop_environment(tmp_path, model: str, retrain_gates: dict):
    shutil.rmtree(monitor_dir(), ignore_errors=True)  # a fresh policy state for each loop
    stack_up()
    lenient = {"min_r2": 0.5, "max_gap_pct": None}
    run_command(
        str(BIN / "zenloop"),
        "train",
        "-c",
        str(run_config(tmp_path / "t.yaml", _training(lenient), model)),
    )
    port, events = free_port(), free_port()
    log_url = f"sqlite:///{tmp_path / 'log.db'}"
    serving = tmp_path / "serving.yaml"
    serving.write_text(
        yaml.safe_dump(
            {
                "port": port,
                "model": {"name": model},
                "reload_interval_s": 1,
                "log": {"database_url": log_url},
                "events": {"url": f"http://127.0.0.1:{events}/events", "every_rows": 200},
            }
        )
    )
    deploy = run_config(
        tmp_path / "d.yaml",
        {"model_name": model, "serving_config": str(serving), "latency_samples": 50},
        key="deploy",
    )
    retrain = run_config(tmp_path / "r.yaml", _training(retrain_gates), model)
    monitor = run_config(
        tmp_path / "m.yaml",
        {
            "model_name": model,
            "log_database_url": log_url,
            "window": {"last_rows": 600},
            "policy": {"min_window_rows": 300, "consecutive_windows": 2, "cooldown_s": 0},
            "retrain": {
                "training_config": str(retrain),
                "deployment_config": str(deploy),
                "min_labelled_rows": 200,
                "reference_rows": 2000,
            },
            "events_port": events,
            "backstop_interval_s": 30,
            "heartbeat_interval_s": 0.5,
        },
        key="monitor",
    )
    run_command(str(BIN / "zenloop"), "deploy", "-c", str(deploy))
    try:
        run_command(
            str(BIN / "zenloop"),
            "monitor",
            "-c",
            str(monitor),
            "--watch",
            "--detach",
            "--max-seconds",
            "600",
        )
        yield Loop(f"http://127.0.0.1:{port}", resolve_admin_token(None))
    finally:
        run_command(str(BIN / "zenloop"), "monitor", "--stop", "-c", str(monitor), check=False)
        run_command(str(BIN / "zenloop"), "serve", "--stop", "-c", str(serving), check=False)


def _served(loop: Loop) -> str:
    return httpx.get(f"{loop.url}/model-info").json()["version"]


def _checks() -> int:
    return (read_heartbeat() or {}).get("checks", 0)


def test_drift_retrains_and_the_service_serves_the_new_champion(tmp_path):
    with loop_environment(tmp_path, "loop-ok", {"min_r2": 0.5, "max_gap_pct": None}) as loop:
        assert _served(loop) == "1"
        normal = replay(
            loop.url, generate_orders(700, seed=101).drop(columns="is_returned"), TARGET, loop.token
        )
        assert normal.failed == 0
        _wait(lambda: _checks() >= 1, "a check of the undrifted traffic")
        decision = read_heartbeat()["last_decision"]
        assert decision["retrain"] is False and "no drift" in decision["reason"]

        drifted = generate_orders(DRIFT_ROWS, seed=202, scenario="promotion_season").drop(
            columns="is_returned"
        )
        onset = replay(
            loop.url,
            drifted,
            TARGET,
            loop.token,
            pause_s=0.3,
            max_seconds=WAIT_S,
            until=lambda v: v != "1",
        )
        assert onset.failed == 0
        assert _served(loop) != "1", f"no new version served: {RetrainOutcome.load()}"
        outcome = _wait(RetrainOutcome.load, "the retrain outcome")
        assert outcome["promoted"] and outcome["deployed_version"] == _served(loop)
        after = replay(
            loop.url,
            generate_orders(600, seed=303, scenario="promotion_season").drop(columns="is_returned"),
            TARGET,
            None,
        )
        assert after.rmse(_served(loop)) < onset.rmse("1"), (
            "the retrained model is not better on drifted traffic"
        )


def test_a_retrain_that_fails_its_gates_leaves_the_champion_serving(tmp_path):
    impossible = {"min_r2": 0.99999, "max_gap_pct": None}
    with loop_environment(tmp_path, "loop-gates", impossible) as loop:
        drifted = generate_orders(4000, seed=404, scenario="promotion_season").drop(
            columns="is_returned"
        )
        replay(
            loop.url,
            drifted,
            TARGET,
            loop.token,
            pause_s=0.3,
            max_seconds=60,
            until=lambda v: RetrainOutcome.load() is not None,
        )
        outcome = _wait(RetrainOutcome.load, "the retrain outcome")
        assert outcome["promoted"] is False
        assert "no candidate passed the quality gates" in outcome["summary"]
        assert _served(loop) == "1"
