"""The trigger policy and the retrain lease, on a real database (SQLite in WAL mode)."""

import subprocess
import sys
import threading
import time

from monitoring.drift_report import DriftReport
from monitoring.policy import decide
from monitoring.state_store import Lease, MonitorStore, PolicyState, retrains
from zenloop.config import PolicyConfig

POLICY = PolicyConfig(
    min_window_rows=500, min_new_rows=100, consecutive_windows=2, cooldown_s=60, lease_timeout_s=30
)
DECIDERS = 16
NEW = 1_000  # new rows in a window that counts


def _report(drift: bool, rows: int = 2_000, version: str = "1") -> DriftReport:
    return DriftReport(
        model_name="m",
        model_version=version,
        window_start=0.0,
        window_end=1.0,
        window_rows=rows,
        compared_rows=rows,
        reference_rows=5_000,
        sample_seed=0,
        columns=[],
        drifted_count=0,
        drifted_share=0.5 if drift else 0.0,
        prediction=None,
        performance=None,
        drift=drift,
        reason="drift" if drift else "no drift",
        seconds=0.1,
    )


def _store(tmp_path) -> MonitorStore:
    return MonitorStore(f"sqlite:///{tmp_path / 'log.db'}")


class Checks:
    """Successive windows of fresh rows, decided and recorded as the monitoring step does."""

    def __init__(self, tmp_path, policy: PolicyConfig = POLICY):
        self.store = _store(tmp_path)
        self.state = PolicyState()
        self.lease = Lease(self.store, policy.lease_timeout_s)
        self.policy = policy
        self.last_id = 0

    def check(self, drift: bool, rows: int = 2_000, new_rows: int = NEW, version: str = "1"):
        self.last_id += new_rows
        report = _report(drift, rows, version)
        retrained_at = self.store.retrained_at("m", version)
        decision = decide(
            report, new_rows, self.last_id, self.state, self.lease, self.policy,
            retrained_at=retrained_at,
        )  # fmt: skip
        decision.check_id = self.store.record_check(
            report.model_dump(mode="json"), decision.retrain, decision.reason, self.last_id
        )
        return decision

    def retrained(self, decision, promoted: bool, failed: bool = False, ago_s: float = 0.0):
        """The retraining `decision` asked for ends (its lease given back), `ago_s` ago."""
        retrain_id = self.store.start_retrain("m", decision.check_id)
        self.store.finish_retrain(retrain_id, promoted, "2" if promoted else None, "", failed)
        with self.store.engine.begin() as connection:
            connection.execute(
                retrains.update().where(retrains.c.id == retrain_id),
                {"finished_at": time.time() - ago_s},
            )
        self.lease.release()


def test_small_windows_never_trigger(tmp_path):
    checks = Checks(tmp_path)
    for _ in range(5):
        decision = checks.check(True, rows=499)
        assert not decision.retrain and "below min_window_rows" in decision.reason


def test_consecutive_rule_and_reset(tmp_path):
    checks = Checks(tmp_path)
    assert "1/2 consecutive" in checks.check(True).reason
    assert not checks.check(False).retrain  # resets the count
    assert "1/2 consecutive" in checks.check(True).reason
    assert checks.check(True).retrain


def test_the_same_window_is_not_counted_twice(tmp_path):
    checks = Checks(tmp_path)
    assert "1/2 consecutive" in checks.check(True).reason
    again = checks.check(True, new_rows=0)  # a backstop check after a burst and silence
    assert not again.retrain and "same window is not counted twice" in again.reason
    assert checks.state.consecutive_drifted == 1, "neither counted nor reset"
    assert checks.check(True).retrain, "a window with new rows counts again"


def test_cooldown_after_a_retrain_that_kept_the_champion(tmp_path):
    policy = POLICY.model_copy(update={"consecutive_windows": 1})
    checks = Checks(tmp_path, policy)
    trigger = checks.check(True)
    assert trigger.retrain
    checks.retrained(trigger, promoted=False)
    cooled = checks.check(True)
    assert not cooled.retrain and "cooling down" in cooled.reason
    restarted = Checks(tmp_path, policy)  # another monitor process: the store knows
    assert "cooling down" in restarted.check(True).reason
    later = tmp_path / "later"
    later.mkdir()
    checks = Checks(later, policy)
    checks.retrained(checks.check(True), promoted=False, ago_s=policy.cooldown_s + 1)
    assert checks.check(True).retrain, "the cooldown is over"


def test_a_failed_retraining_starts_no_cooldown_and_holds_no_lease(tmp_path):
    checks = Checks(tmp_path, POLICY.model_copy(update={"consecutive_windows": 1}))
    trigger = checks.check(True)
    checks.retrained(trigger, promoted=False, failed=True)
    assert checks.lease.holder() is None
    assert checks.check(True).retrain, "the next confirmed drift tries again"


def test_drift_that_persists_after_a_swap_triggers_once_the_new_version_has_its_own_windows(
    tmp_path,
):
    checks = Checks(tmp_path)  # two consecutive windows, a cooldown of 60 s
    assert not checks.check(True).retrain
    trigger = checks.check(True)
    assert trigger.retrain
    checks.retrained(trigger, promoted=True)  # v2 serves from here on
    small = checks.check(True, rows=100, version="2")
    assert not small.retrain and "below min_window_rows" in small.reason
    assert "1/2 consecutive" in checks.check(True, version="2").reason
    again = checks.check(True, version="2")
    assert again.retrain, f"no cooldown for a new version: {again.reason}"


def test_single_flight_under_concurrent_deciders(tmp_path):
    policy = POLICY.model_copy(update={"consecutive_windows": 1, "cooldown_s": 0})
    _store(tmp_path)  # tables exist before the race
    barrier = threading.Barrier(DECIDERS)
    results = []

    def monitor_instance():
        store = _store(tmp_path)  # as separate monitor processes would have
        lease = Lease(store, policy.lease_timeout_s)
        barrier.wait()
        results.append(decide(_report(True), NEW, NEW, PolicyState(), lease, policy).retrain)

    threads = [threading.Thread(target=monitor_instance) for _ in range(DECIDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(results) == 1, results


ACQUIRE = """
import sys, time
from monitoring.state_store import MonitorStore, Lease
lease = Lease(MonitorStore(sys.argv[1]), 30)
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
print(int(lease.acquire(time.time(), "race")))
"""


def test_exactly_one_of_many_processes_takes_the_lease(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    _store(tmp_path)
    start = time.time() + 3.0  # every process is up and waiting by then
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", ACQUIRE, url, str(start)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(8)
    ]
    won = [int(p.communicate(timeout=60)[0].strip()) for p in processes]
    assert sum(won) == 1, won


def test_a_stale_lease_is_taken_over_and_a_renewed_one_never(tmp_path):
    store = _store(tmp_path)
    holder = Lease(store, timeout_s=30)
    other = Lease(store, timeout_s=30)
    now = time.time()
    assert holder.acquire(now - 3_600, "a retraining that runs for an hour")
    for minutes in range(1, 61):  # it keeps renewing: never taken, however long it runs
        holder.renew(now - 3_600 + minutes * 60)
    assert not other.acquire(now, "another"), "a live, renewed lease holds"
    assert holder.holder()["owner"] == holder.owner
    assert other.acquire(now + 31, "after the holder went silent"), "a stale lease is taken over"
    assert not holder.renew(now + 32), "the old holder learns it lost the lease"
    holder.release()  # not the owner any more: changes nothing
    assert other.holder()["owner"] == other.owner


def test_state_survives_a_restart(tmp_path):
    checks = Checks(tmp_path)
    checks.check(True)
    checks.store.save_state("m", checks.state)
    restored = _store(tmp_path).load_state("m")
    assert restored.consecutive_drifted == 1 and restored.last_log_id == NEW


def test_confirmed_drift_waits_for_labelled_data_without_taking_the_lease(tmp_path):
    checks = Checks(tmp_path, POLICY.model_copy(update={"consecutive_windows": 1}))
    waiting = decide(_report(True), NEW, NEW, checks.state, checks.lease, checks.policy, 50, 200)
    assert not waiting.retrain and "waiting for labelled data: 50/200" in waiting.reason
    assert checks.lease.holder() is None
    ready = decide(_report(True), NEW, 2 * NEW, checks.state, checks.lease, checks.policy, 250, 200)
    assert ready.retrain


def test_a_retrained_version_learns_only_from_rows_after_those_its_retraining_used(tmp_path):
    checks = Checks(tmp_path, POLICY.model_copy(update={"consecutive_windows": 1}))
    trigger = checks.check(True)  # v1's window ends at row NEW
    assert checks.store.drift_onset_log_id("m", "1") == 0, "v1 drifted from its first window"
    checks.retrained(trigger, promoted=True)  # deployed v2, trained on rows up to NEW
    assert checks.store.drift_onset_log_id("m", "2") == NEW
    checks.check(False, version="2")  # a clean window of v2, ending at row 2 * NEW
    assert checks.store.drift_onset_log_id("m", "2") == 2 * NEW


def test_a_version_being_rolled_back_starts_no_retraining_and_the_restored_one_cools_down(
    tmp_path,
):
    checks = Checks(tmp_path)
    checks.check(True, version="2")
    report = _report(True, version="2")
    rolled = decide(
        report, NEW, checks.last_id + NEW, checks.state, checks.lease, POLICY,
        rolled_back="rolled back: v2 worse on later rows",
    )  # fmt: skip
    assert not rolled.retrain and "rolled back" in rolled.reason
    assert checks.lease.holder() is None, "the lease is left for the rollback"
    promotion = checks.store.start_retrain("m", None)
    checks.store.finish_retrain(promotion, True, "2", "", replaced_version="1")
    checks.store.record_rollback(promotion, "rolled back", log_id=checks.last_id)
    checks.check(True, version="1")
    cooling = checks.check(True, version="1")
    assert not cooling.retrain and "cooling down" in cooling.reason


def test_a_promotion_waiting_for_its_review_is_judged_before_a_retraining_replaces_it(
    tmp_path,
):
    checks = Checks(tmp_path, POLICY.model_copy(update={"consecutive_windows": 1}))
    report = _report(True, version="2")
    waiting = decide(
        report, NEW, NEW, checks.state, checks.lease, checks.policy,
        under_review="waiting: rmse v1 9.1 -> v2 9.6 on the same 120 later rows",
    )  # fmt: skip
    assert not waiting.retrain and "before the promotion's verdict" in waiting.reason
    assert checks.lease.holder() is None
    judged = decide(report, NEW, 2 * NEW, checks.state, checks.lease, checks.policy)
    assert judged.retrain, "once the verdict is in (kept), drift retrains as before"


def test_labelled_rows_that_show_the_error_grown_confirm_drift_at_once(tmp_path):
    from monitoring.drift_report import PerformanceCheck

    checks = Checks(tmp_path)
    degraded = PerformanceCheck(
        metric="rmse", window_value=30.0, test_value=10.0, ratio=3.0, labelled_rows=400,
        degraded=True, max_ratio=1.5,
    )  # fmt: skip
    report = _report(True).model_copy(update={"performance": degraded})
    now = decide(report, NEW, NEW, checks.state, checks.lease, POLICY)
    assert now.retrain, "one window: the error is the evidence"
    checks.lease.release()
    waits = POLICY.model_copy(update={"performance_confirms": False})
    later = decide(report, NEW, 2 * NEW, PolicyState(), checks.lease, waits)
    assert not later.retrain and "1/2 consecutive" in later.reason


def test_after_a_retraining_that_lost_more_labelled_rows_must_come_in(tmp_path):
    policy = POLICY.model_copy(update={"consecutive_windows": 1, "cooldown_s": 0})
    checks = Checks(tmp_path, policy)
    lost = checks.check(True)
    checks.retrained(lost, promoted=False)
    since = checks.store.cooldown_log_id("m", "1")
    assert since == checks.last_id, "counted from the last row the retraining saw"
    report = _report(True)
    waiting = decide(
        report, NEW, checks.last_id + NEW, checks.state, checks.lease, policy,
        labelled_since_retrain=200,
    )  # fmt: skip
    assert not waiting.retrain and "200/500 labelled rows since" in waiting.reason
    ready = decide(
        report, NEW, checks.last_id + 2 * NEW, checks.state, checks.lease, policy,
        labelled_since_retrain=600,
    )  # fmt: skip
    assert ready.retrain
    assert checks.store.cooldown_log_id("m", "2") is None, "a new version starts with none"


def test_a_check_records_its_new_rows_and_a_short_window_is_not_counted_as_drift(tmp_path):
    from ui.records import check_entry

    checks = Checks(tmp_path)
    short = _report(True, rows=50)
    decision = decide(short, 50, NEW, checks.state, checks.lease, POLICY)
    assert not decision.counted
    check_id = checks.store.record_check(
        short.model_dump(mode="json"), decision.retrain, decision.reason, NEW,
        new_rows=decision.new_rows, counted=decision.counted,
    )  # fmt: skip
    (stored,) = [c for c in checks.store.recent_checks(5, "m") if c["id"] == check_id]
    entry = check_entry(stored)
    assert entry["new_rows"] == 50 and entry["window_rows"] == 50
    assert entry["decision"] == "not counted", entry
