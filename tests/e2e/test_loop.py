"""The whole loop on the local stack: real service, real monitor, real retraining processes."""

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient
from zenml.client import Client
from zenml.enums import ModelStages

from monitoring.state_store import Lease
from ops.replay import replay
from ops.warm_runner import ENABLE_ENV as WARM_RUNNER_ENV
from tests.support.browser import operations_page_after_the_loop
from tests.support.loop import (
    BATCH_ROWS,
    DRIFT_PAUSE_S,
    LENIENT,
    MONITOR_LIFE,
    RETRAINS_SEEN,
    TARGET,
    drift_retrains_and_serves,
    drifted_until,
    loop_environment,
    monitor_health,
    orders,
)
from tests.support.pipelines import BIN, run_command, run_config, stack_up
from tests.support.serving import free_port
from tests.support.ui import running_page
from tests.support.waiting import wait_for

RETRAIN_LEASE_S = 60  # long enough to read who holds it
REVIEW_ROWS = 800  # later rows a promotion is judged on: enough for a clear verdict
BURN_S = 900  # the burner stops by itself even if the test is killed
BURNER = (
    f"import time\nend = time.monotonic() + {BURN_S}\nwhile time.monotonic() < end:\n    pass\n"
)


@pytest.fixture
def busy_machine():
    """A CPU-burning process beside the whole test: the loop must close on a busy machine."""
    burner = subprocess.Popen([sys.executable, "-c", BURNER])
    try:
        yield
    finally:
        burner.kill()
        burner.wait()


def test_drift_retrains_and_the_service_serves_the_new_champion(tmp_path, busy_machine):
    with loop_environment(tmp_path, "loop-ok", LENIENT) as loop:
        drift_retrains_and_serves(loop)
        # the operations page, reading this very cycle's service and history
        with running_page(tmp_path, loop.url, tmp_path / "log.db") as page:
            shown = operations_page_after_the_loop(page.url, loop.served())
            assert f"v{loop.served()}" in shown["served-version"]
            assert "threshold" in shown["drift-table"]
            assert "promoted and deployed" in shown["retrain-table"]


def test_a_retrain_that_fails_its_gates_leaves_the_champion_serving(tmp_path):
    impossible = {"min_r2": 0.99999, "max_gap_pct": None}
    with loop_environment(tmp_path, "loop-gates", impossible) as loop:
        drifted_until(loop, 404, lambda: loop.outcome() is not None)
        outcome = wait_for(loop.outcome, "the retrain outcome", loop.wait_s)
        assert outcome["promoted"] is False
        assert "no candidate passed the quality gates" in outcome["summary"]
        assert loop.served() == "1"
        assert loop.history.recent_checks(50), "every check is in the monitor's history"


def test_a_retraining_that_fails_is_shown_holds_nothing_and_is_tried_again(tmp_path):
    """Its plan fails (the fallback data is gone): the failure is recorded with its own
    reason, shown by `zenloop status` and the monitor's heartbeat, the lease is free, and
    no cooldown starts: the next confirmed drift tries again."""
    missing = tmp_path / "gone.csv"
    fallback = {"source": "file", "path": str(missing), "target": TARGET}
    with loop_environment(
        tmp_path,
        "loop-fails",
        LENIENT,
        consecutive_windows=1,
        policy={"cooldown_s": 3600},
        retrain={"fallback": fallback, "min_labelled_rows": 100_000},
    ) as loop:

        def failed() -> list[dict]:
            return [r for r in loop.history.recent_retrains(RETRAINS_SEEN) if r["failed"]]

        # no feedback: the retraining needs its fallback data
        drifted_until(loop, 505, lambda: len(failed()) >= 2, feedback=False)
        attempts = wait_for(lambda: len(failed()) >= 2 and failed(), "two failed tries", 60)
        first = attempts[-1]
        assert first["promoted"] is False and first["finished_at"] is not None
        assert "planning it failed" in first["summary"] and "file not found" in first["summary"]
        assert str(missing) in first["summary"], "the failing step's own error"
        assert Lease(loop.history, RETRAIN_LEASE_S).holder() is None, "no lease outlives a failure"
        assert loop.served() == "1"
        beat = wait_for(lambda: (b := loop.heartbeat()).get("last_retrain") and b, "a beat", 30)
        assert beat["last_retrain"]["failed"] is True
        assert "file not found" in beat["last_error"]["error"]
        status = run_command(
            str(BIN / "zenloop"), "status", "-c", str(loop.serving_config), check=False
        )
        assert "last retraining" in status.stdout and "failed, champion stays" in status.stdout
        assert "file not found" in status.stdout


def test_a_promotion_whose_deployment_fails_is_undone(tmp_path):
    """The retrained model wins, but its deployment refuses it (an impossible latency
    bound): the champion before it is the champion again in the registry and in ZenML, so
    the monitor goes on watching the version that serves, not one that never went live."""
    strict = run_config(
        tmp_path / "strict-deploy.yaml",
        {
            "model_name": "loop-undo",
            "serving_config": str(tmp_path / "serving.yaml"),  # loop_environment writes it
            "max_p50_latency_ms": 1e-6,
            "latency_samples": 10,
        },
        "loop-undo",
        key="deploy",
    )
    with loop_environment(
        tmp_path, "loop-undo", LENIENT, retrain={"deployment_config": str(strict)}
    ) as loop:
        drifted_until(loop, 606, lambda: first_failed(loop) is not None)
        outcome = wait_for(lambda: first_failed(loop), "a failed deployment", loop.wait_s)
        traffic_ended = time.time()
        assert "latency" in outcome["summary"], outcome["summary"]
        rest = wait_for(lambda: at_rest(loop, traffic_ended), "the loop at rest", loop.wait_s)
        retrains = loop.history.recent_retrains(RETRAINS_SEEN)
        assert not any(r["promoted"] for r in retrains), [r["summary"] for r in retrains]
        registry = MlflowClient()
        newest = max(int(v.version) for v in registry.search_model_versions("name='loop-undo'"))
        assert newest >= 2
        assert str(registry.get_model_version_by_alias("loop-undo", "champion").version) == "1"
        assert int(registry.get_model_version_by_alias("loop-undo", "challenger").version) == newest
        production = Client().get_model_version("loop-undo", ModelStages.PRODUCTION)
        assert production.number == 1, "ZenML's stage follows the alias back"
        assert loop.served() == "1"
        assert rest["model_version"] == "1", "the monitor watches the version that serves"


def test_a_promotion_worse_on_the_rows_after_it_is_rolled_back_by_itself(tmp_path):
    """A retraining learns a promotion season's orders and is promoted on them; then the
    season ends. On the normal orders that follow, the new version is worse than the one
    it replaced: the monitor's review scores both on the same later labelled rows (the
    replaced one offline, from the log), rolls the promotion back by itself, and says so.

    The models do not see the tax column: tax follows the basket's real cost, so with it a
    model reads the season's bundle deals off the rows and the season's version is as good
    as any afterwards. Without it the deals are recorded nowhere, as a real promotion's
    terms often are: the season's version prices every basket with a deal that has ended."""
    with loop_environment(
        tmp_path,
        "loop-rollback",
        LENIENT,
        retrain={"reference_rows": 100},  # it learns the season, not the year before
        monitor={"rollback": {"after_rows": REVIEW_ROWS}},
        training={"profile": {"column_roles": {"tax": "ignore"}}},
    ) as loop:
        promoted = _season_learnt(loop)

        def rolled_back() -> dict | None:
            deployed = loop.deployed(promoted)
            return deployed if deployed and deployed["rolled_back_at"] else None

        # the season is over: normal orders, with their ground truth
        replay(
            loop.url, orders(6_000, 910), TARGET, loop.token, batch_rows=BATCH_ROWS,
            pause_s=DRIFT_PAUSE_S, max_seconds=loop.wait_s, until=lambda _v: rolled_back(),
        )  # fmt: skip
        record = wait_for(rolled_back, f"the rollback of v{promoted}", loop.wait_s)
        assert record["replaced_version"] == "1"
        assert record["later_rows"] >= REVIEW_ROWS
        assert record["later_after"] > record["later_before"], "worse on the same later rows"
        assert record["review"].startswith("rolled back") and "confidence" in record["review"]
        wait_for(lambda: loop.served() == "1", "the service serving v1 again", loop.wait_s)
        registry = MlflowClient()
        assert str(registry.get_model_version_by_alias("loop-rollback", "champion").version) == "1"
        challenger = registry.get_model_version_by_alias("loop-rollback", "challenger")
        assert str(challenger.version) == promoted
        assert Client().get_model_version("loop-rollback", ModelStages.PRODUCTION).number == 1
        status = run_command(str(BIN / "zenloop"), "status", "-c", str(loop.serving_config))
        assert "promoted, then rolled back" in status.stdout
        assert f"on the same {record['later_rows']} later rows: v1" in status.stdout
        beat = wait_for(lambda: (b := loop.heartbeat()).get("alerts") and b, "an alert", 30)
        assert any("rolled back" in alert for alert in beat["alerts"])


def _season_learnt(loop, seasons: int = 3) -> str:
    """The season's orders, each time until a retraining starts (so that the version it
    promotes serves none of them); a retraining that loses to the champion needs more of
    them. Returns the promoted version, once it serves."""
    for season in range(seasons):
        finished = _one_season(loop, 909 + season)
        if finished["promoted"]:
            return _serving(loop, finished["deployed_version"])
    raise AssertionError(f"no promotion after {seasons} seasons: {loop.history.recent_retrains(5)}")


def _serving(loop, version: str) -> str:
    wait_for(lambda: loop.served() == version, f"v{version} serving", loop.wait_s)
    return version


def _one_season(loop, seed: int) -> dict:
    """Season orders until a new retraining starts; that retraining, once it ended."""
    seen = {r["id"] for r in loop.history.recent_retrains(RETRAINS_SEEN)}

    def started() -> dict | None:
        return loop.first_retrain(lambda r: r["id"] not in seen)

    drifted_until(loop, seed, started)
    new_id = wait_for(started, "a retraining of the season's orders", loop.wait_s)["id"]
    return wait_for(
        lambda: loop.first_retrain(lambda r: r["id"] == new_id and r["finished_at"]),
        "the retraining's end",
        loop.wait_s,
    )


def first_failed(loop) -> dict | None:
    """The first retraining that failed. One before it may have lost to the champion (its
    candidate learnt from the few drifted rows labelled so far), which is no failure."""
    return loop.first_retrain(lambda r: r["failed"])


def at_rest(loop, traffic_ended: float) -> dict | None:
    """A check after the traffic ended that started no retraining, once none runs: with no
    new rows, no later check can start one, so what the registry says now stays."""
    if Lease(loop.history, RETRAIN_LEASE_S).holder() is not None:
        return None
    if any(r["finished_at"] is None for r in loop.history.recent_retrains(RETRAINS_SEEN)):
        return None
    quiet = [
        c
        for c in loop.history.recent_checks(5)
        if c["checked_at"] > traffic_ended and not c["retrain"]
    ]
    return quiet[0] if quiet else None


def test_a_monitor_killed_during_a_retraining_is_taken_over_and_it_stays_one(tmp_path):
    """Two monitors on one log. The active one launches a retraining and is SIGKILLed; the
    standby takes the monitor lease within its timeout and checks the drift that goes on,
    and the retrain lease, still held by the retraining in flight, keeps it at one."""
    lease_s = 3.0
    stack_up()  # loop_environment sets it up only when given no environment
    with loop_environment(
        tmp_path,
        "loop-takeover",
        LENIENT,
        # a fresh retrain runner: its start-up keeps the retraining in flight through the
        # take-over and the new active monitor's first check (a warm one can end first)
        env={**os.environ, WARM_RUNNER_ENV: "0"},
        consecutive_windows=1,
        monitor={"active_lease_timeout_s": lease_s, "backstop_interval_s": 5},
    ) as loop:
        events = free_port()
        standby_env = {
            **os.environ,
            "ZENLOOP_DATA_DIR": str(tmp_path / "standby"),
            WARM_RUNNER_ENV: "0",
        }
        standby_url = f"http://127.0.0.1:{events}/health"
        zenloop = str(BIN / "zenloop")
        config = str(loop.monitoring_config)
        run_command(
            zenloop, "monitor", "-c", config, "--watch", "--detach", "--events-port", str(events),
            "--max-seconds", str(MONITOR_LIFE * loop.wait_s),
            env=standby_env,
        )  # fmt: skip

        try:
            wait_for(
                lambda: monitor_health(standby_url).get("role") == "standby",
                "the second monitor standing by",
                60,
            )
            assert loop.heartbeat()["role"] == "active"
            drifted_until(loop, 707, lambda: loop.heartbeat().get("retraining"))
            active = loop.heartbeat()
            assert active.get("retraining"), "the active monitor launched a retraining"
            os.kill(active["pid"], signal.SIGKILL)
            killed_at = time.monotonic()
            wait_for(
                lambda: monitor_health(standby_url).get("role") == "active",
                "the take-over",
                lease_s + 30,
            )
            print(f"take-over {time.monotonic() - killed_at:.1f} s after SIGKILL")

            def in_flight() -> list[dict]:
                checks = loop.history.recent_checks(RETRAINS_SEEN)
                return [c for c in checks if "already in flight" in c["reason"]]

            # the drift goes on: the new active monitor sees it while the retraining runs
            drifted_until(loop, 808, lambda: in_flight() or loop.outcome() is not None)
            outcome = wait_for(loop.outcome, "the retraining's outcome", loop.wait_s)
            # promoted, or lost to the champion: either way a whole retraining, and one
            assert not outcome["failed"], outcome["summary"]
            assert in_flight(), "the new active monitor checked while the retraining ran"
            retrains = loop.history.recent_retrains(RETRAINS_SEEN)
            overlapping = [r for r in retrains if r["started_at"] < outcome["finished_at"]]
            assert len(overlapping) == 1, overlapping
            triggers = [
                c
                for c in loop.history.recent_checks(RETRAINS_SEEN)
                if c["retrain"] and c["checked_at"] < outcome["finished_at"]
            ]
            assert len(triggers) == 1, [c["reason"] for c in triggers]
            print(f"while the retraining ran: {in_flight()[-1]['reason'][:120]}")
        finally:
            run_command(zenloop, "monitor", "--stop", "-c", config, env=standby_env, check=False)
