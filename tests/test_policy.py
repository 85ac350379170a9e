"""The trigger policy: minimum window, consecutive windows, cooldown, one retrain in flight."""

import json
import subprocess
import sys
import threading
import time

from monitoring.drift import DriftReport
from monitoring.policy import MonitorState, RetrainLock, decide
from zenloop.config import PolicyConfig

POLICY = PolicyConfig(min_window_rows=500, consecutive_windows=2, cooldown_s=60, stale_lock_s=30)


def _report(drift: bool, rows: int = 2_000) -> DriftReport:
    return DriftReport(
        model_name="m",
        model_version="1",
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


def _lock(tmp_path, stale_after: float = POLICY.stale_lock_s) -> RetrainLock:
    return RetrainLock(stale_after, tmp_path / "retrain.lock")


def test_small_windows_never_trigger(tmp_path):
    state, lock = MonitorState(), _lock(tmp_path)
    for _ in range(5):
        decision = decide(_report(True, rows=499), state, lock, POLICY)
        assert not decision.retrain and "below min_window_rows" in decision.reason


def test_consecutive_rule_and_reset(tmp_path):
    state, lock = MonitorState(), _lock(tmp_path)
    assert "1/2 consecutive" in decide(_report(True), state, lock, POLICY).reason
    assert not decide(_report(False), state, lock, POLICY).retrain  # resets the count
    assert "1/2 consecutive" in decide(_report(True), state, lock, POLICY).reason
    assert decide(_report(True), state, lock, POLICY).retrain
    assert len(state.history) == 4


def test_cooldown_after_a_retrain(tmp_path):
    state, lock = MonitorState(), _lock(tmp_path)
    policy = POLICY.model_copy(update={"consecutive_windows": 1})
    assert decide(_report(True), state, lock, policy).retrain
    lock.release()
    cooled = decide(_report(True), state, lock, policy)
    assert not cooled.retrain and "cooling down" in cooled.reason
    state.last_retrain_at -= policy.cooldown_s + 1
    assert decide(_report(True), state, lock, policy).retrain


def test_single_flight_under_concurrent_events(tmp_path):
    policy = POLICY.model_copy(update={"consecutive_windows": 1, "cooldown_s": 0})
    barrier = threading.Barrier(16)
    results = []

    def monitor_instance():
        state = MonitorState()  # as separate monitor processes would have
        barrier.wait()
        results.append(decide(_report(True), state, _lock(tmp_path), policy).retrain)

    threads = [threading.Thread(target=monitor_instance) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sum(results) == 1, results


def test_lock_of_a_dead_process_or_too_old_is_recovered(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    lock = _lock(tmp_path)
    lock.path.write_text(json.dumps({"pid": int(dead.stdout), "since": time.time()}))
    assert lock.acquire(time.time(), "after a crash"), "a dead holder's lock must be taken over"
    lock.release()
    lock.path.write_text(json.dumps({"pid": 1, "since": time.time() - POLICY.stale_lock_s - 1}))
    assert lock.acquire(time.time(), "stale"), "a lock older than stale_lock_s is taken over"
    assert not _lock(tmp_path).acquire(time.time(), "second"), "a live, fresh lock holds"


def test_state_survives_a_restart(tmp_path):
    state = MonitorState()
    decide(_report(True), state, _lock(tmp_path), POLICY)
    state.save(tmp_path / "state.json")
    restored = MonitorState.load(tmp_path / "state.json")
    assert restored.consecutive_drifted == 1 and len(restored.history) == 1
