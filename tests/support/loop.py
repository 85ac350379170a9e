"""The whole loop on small data, on any stack: real service, monitor and retraining processes.

tests/e2e/test_loop.py runs it on the local stack, tests/e2e/test_server_stack.py on the
server one, tests/containers/test_docker_stack.py on the docker one (slower: every step
starts a container, so it waits longer and keeps its files in the data folder, which step
containers see).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from monitoring.state_store import MonitorStore
from ops.replay import replay
from tests.support.pipelines import BIN, run_command, run_config, stack_up
from tests.support.serving import free_port
from tests.support.waiting import wait_for
from zenloop.admin_token import resolve_admin_token
from zenloop.data.generator import generate_orders

TARGET = "order_total"
WAIT_S = 240.0  # for each awaited outcome (a stack may need longer)
MONITOR_LIFE = 2.5  # the monitor stops by itself after this many waits, even if orphaned
BATCH_ROWS, DRIFT_PAUSE_S = 50, 0.3
LENIENT = {"min_r2": 0.5, "max_gap_pct": None}
RETRAINS_SEEN = 20


def _training(gates: dict, **sections) -> dict:
    return {
        "data": {"n_rows": 3000, "seed": 11},
        "candidates": [{"name": "xgboost", "family": "xgboost", "params": {"n_estimators": 60}}],
        "gates": gates,
        "reference": {"sample_size": 1000},
        **sections,
    }


def monitor_health(url: str) -> dict:
    """A monitor's heartbeat from its health endpoint; empty while nothing answers there."""
    try:
        return httpx.get(url, timeout=5).json()
    except httpx.HTTPError:
        return {}


@dataclass
class Loop:
    url: str
    token: str
    monitor_url: str
    history: MonitorStore
    wait_s: float = WAIT_S
    serving_config: Path | None = None
    env: dict[str, str] | None = None
    monitoring_config: Path | None = None

    def served(self) -> str:
        return httpx.get(f"{self.url}/model-info", timeout=30).json()["version"]

    def heartbeat(self) -> dict:
        """The monitor's own view, over its HTTP health endpoint."""
        return monitor_health(self.monitor_url)

    def deployed(self, version: str) -> dict | None:
        """The finished retraining that deployed `version`, if any."""
        retrains = self.history.recent_retrains(RETRAINS_SEEN)
        return next((r for r in retrains if r["deployed_version"] == version), None)

    def outcome(self) -> dict | None:
        """The first finished retraining (later ones may follow while drift lasts), if any."""
        return self.first_retrain(lambda r: r["finished_at"])

    def first_retrain(self, matches) -> dict | None:
        """The oldest of the recent retrainings for which `matches(row)` holds, if any."""
        found = [r for r in self.history.recent_retrains(RETRAINS_SEEN) if matches(r)]
        return min(found, key=lambda r: r["id"]) if found else None


@contextmanager
def loop_environment(
    tmp_path,
    model: str,
    retrain_gates: dict,
    env: dict[str, str] | None = None,
    wait_s: float = WAIT_S,
    log_folder: Path | None = None,
    champion_stack: tuple[str, str] | None = None,
    consecutive_windows: int = 2,
    policy: dict | None = None,
    retrain: dict | None = None,
    monitor: dict | None = None,
    training: dict | None = None,
) -> Iterator[Loop]:
    """Train, deploy, serve and watch `model` on the active stack of `env` (default: local).

    The prediction log goes to `log_folder` (default `tmp_path`). `champion_stack` is
    (stack of the first champion, stack of the loop): the first training and deployment
    run on the one (e.g. `server`, sharing the loop stack's servers), the loop on the other.
    `policy` and `retrain` override the monitor's settings of those sections, `monitor`
    its top-level ones; `training` adds sections to both trainings' configs.
    """
    if env is None:
        stack_up()
    if champion_stack:
        stack_up(champion_stack[0], env)
    zenloop = str(BIN / "zenloop")
    first = run_config(tmp_path / "t.yaml", _training(LENIENT, **(training or {})), model)
    run_command(zenloop, "train", "-c", str(first), env=env)
    port, events = free_port(), free_port()
    log_url = f"sqlite:///{(log_folder or tmp_path) / 'log.db'}"
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
        {"model_name": model, "service_url": f"http://127.0.0.1:{port}", "latency_samples": 50},
        model,
        key="deploy",
    )
    retraining = run_config(
        tmp_path / "r.yaml", _training(retrain_gates, **(training or {})), model
    )
    monitoring = run_config(
        tmp_path / "m.yaml",
        {
            "model_name": model,
            "log_database_url": log_url,
            "window": {"last_rows": 600},
            "policy": {
                "min_window_rows": 300,
                "min_new_rows": 100,
                "consecutive_windows": consecutive_windows,
                "cooldown_s": 0,
                **(policy or {}),
            },
            "retrain": {
                "training_config": str(retraining),
                "deployment_config": str(deploy),
                "min_labelled_rows": 200,
                "reference_rows": 2000,
                **(retrain or {}),
            },
            "events_port": events,
            "backstop_interval_s": 30,
            "heartbeat_interval_s": 0.5,
            **(monitor or {}),
        },
        model,
        key="monitor",
    )
    try:  # from here on a service may run: it is stopped whatever happens
        run_command(zenloop, "deploy", "-c", str(deploy), "--serving-config", str(serving), env=env)
        if champion_stack:
            stack_up(champion_stack[1], env)
        run_command(
            zenloop, "monitor", "-c", str(monitoring), "--watch", "--detach",
            "--max-seconds", str(MONITOR_LIFE * wait_s),
            env=env,
        )  # fmt: skip
        token = (env or {}).get("ZENLOOP_ADMIN_TOKEN") or resolve_admin_token(None)
        yield Loop(
            f"http://127.0.0.1:{port}",
            token,
            f"http://127.0.0.1:{events}/health",
            MonitorStore(log_url),
            wait_s,
            serving,
            env,
            monitoring,
        )
    finally:
        run_command(zenloop, "monitor", "--stop", "-c", str(monitoring), check=False, env=env)
        run_command(zenloop, "serve", "--stop", "-c", str(serving), check=False, env=env)


def orders(n: int, seed: int, scenario: str | None = None):
    return generate_orders(n, seed=seed, scenario=scenario).drop(columns="is_returned")


def drifted_until(loop: Loop, seed: int, done, feedback: bool = True, rows: int = 6_000):
    """Drifted traffic, with its ground truth unless not `feedback`, until `done()` holds
    (or the loop's wait runs out); the monitor sees it as a user's traffic."""
    replay(
        loop.url,
        orders(rows, seed, "promotion_season"),
        TARGET,
        loop.token if feedback else None,
        pause_s=DRIFT_PAUSE_S,
        max_seconds=loop.wait_s,
        until=lambda _version: done(),
    )


def drift_retrains_and_serves(loop: Loop) -> None:
    """Normal traffic: no retrain. Drifted traffic: a better model serves, no restart."""
    wait = loop.wait_s
    assert loop.served() == "1"
    normal = replay(loop.url, orders(700, 101), TARGET, loop.token)
    assert normal.failed == 0
    # the service's events (every 200 rows, with its admin token) reach the monitor
    wait_for(lambda: loop.heartbeat().get("events", 0) >= 1, "an event from the service", wait)
    wait_for(lambda: loop.heartbeat().get("checks", 0) >= 1, "a check of the normal rows", wait)
    decision = loop.heartbeat()["last_decision"]
    assert decision["retrain"] is False and "no drift" in decision["reason"]

    # enough drifted traffic to outlast the wait: if a first retrain loses (drift seen while
    # the window was still mostly normal rows), later windows must still arrive to retrain
    drift_rows = int(wait / DRIFT_PAUSE_S * BATCH_ROWS)
    onset = replay(
        loop.url,
        orders(drift_rows, 202, "promotion_season"),
        TARGET,
        loop.token,
        batch_rows=BATCH_ROWS,
        pause_s=DRIFT_PAUSE_S,
        max_seconds=wait,
        until=lambda v: v != "1",
    )
    assert onset.failed == 0
    assert loop.served() != "1", f"no new version served: {loop.history.recent_retrains(3)}"
    served = loop.served()
    outcome = wait_for(
        lambda: loop.deployed(served), f"the retraining that deployed v{served}", wait
    )
    assert outcome["promoted"] and "promoted and deployed" in outcome["summary"]
    trigger = loop.history.last_trigger()
    assert trigger is not None and trigger["retrain"] and trigger["report"]["drift"]
    after = replay(loop.url, orders(600, 303, "promotion_season"), TARGET, None)
    assert after.error(loop.served()) < onset.error("1"), (
        "the retrained model is not better on drifted traffic"
    )
