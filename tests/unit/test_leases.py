"""Monitors on one log: exactly one holds the monitor lease and checks; when its process
is killed, a monitor that stood by takes the lease within the lease's timeout. A holder
whose renewal hangs stops counting the lease as its own at the timeout."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from monitoring.state_store import MONITOR_LEASE, Lease, MonitorStore
from ops.leases import LeaseKeeper
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 1.0
START_S = 60.0  # a fresh interpreter importing the store, on a busy machine

HOLDER = """
import sys, time
from monitoring.state_store import MONITOR_LEASE, Lease, MonitorStore
from ops.leases import LeaseKeeper
url, timeout = sys.argv[1], float(sys.argv[2])
keeper = LeaseKeeper(
    lambda: Lease(MonitorStore(url), timeout, name=MONITOR_LEASE), timeout, "the first"
).start()
if keeper.held.wait(60):
    print("held", flush=True)
    time.sleep(600)
"""


def _keeper(url: str, purpose: str) -> LeaseKeeper:
    return LeaseKeeper(
        lambda: Lease(MonitorStore(url), TIMEOUT_S, name=MONITOR_LEASE), TIMEOUT_S, purpose
    )


def _holder(url: str) -> dict | None:
    return Lease(MonitorStore(url), TIMEOUT_S, name=MONITOR_LEASE).holder()


def test_a_killed_holder_is_taken_over_within_the_lease_timeout(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    first = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, str(TIMEOUT_S)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout.readline().strip() == "held"
        standby = _keeper(url, "the second").start()
        try:
            # while the first renews, the second stands by (twice the timeout: not stale)
            assert not standby.held.wait(2 * TIMEOUT_S)
            assert _holder(url)["purpose"] == "the first"
            os.kill(first.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            assert standby.held.wait(START_S), "the standby never took the lease"
            taken_after = time.monotonic() - killed_at
            assert taken_after <= TIMEOUT_S + 2 * standby.interval_s + 1.0, taken_after
            assert _holder(url)["purpose"] == "the second"
        finally:
            standby.stop()
        assert _holder(url) is None, "a monitor that stops gives the lease up"
    finally:
        first.kill()
        first.wait()


def test_a_kept_lease_that_is_lost_ends_its_keeper_unless_it_contends(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    retrain = Lease(MonitorStore(url), TIMEOUT_S, name=MONITOR_LEASE)
    assert retrain.acquire(time.time(), "a retraining")
    keeper = LeaseKeeper(lambda: retrain, TIMEOUT_S, contend_as=None).start(held=True)
    intruder = Lease(MonitorStore(url), TIMEOUT_S, name=MONITOR_LEASE)
    # taken over as if the keeper had stalled: the keeper notices and gives up
    assert intruder.acquire(time.time() + 10 * TIMEOUT_S, "another")
    keeper._thread.join(START_S)
    assert not keeper._thread.is_alive() and not keeper.held.is_set()
    keeper.stop()
    assert _holder(url)["purpose"] == "another", "a lost lease is not released by its loser"


def test_a_keeper_stuck_on_a_stalled_database_stops_counting_the_lease_at_its_timeout(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    keeper = _keeper(url, "the holder").start()
    try:
        assert keeper.held.wait(START_S) and keeper.holds()
        stall = sqlite3.connect(tmp_path / "log.db", isolation_level=None)
        stall.execute("BEGIN EXCLUSIVE")  # the keeper's renewal now waits on the database
        try:
            stalled_at = time.monotonic()
            wait_for(lambda: not keeper.holds(), "the lease no longer counted", START_S, 0.02)
            assert time.monotonic() - stalled_at <= TIMEOUT_S + keeper.interval_s + 1.0
            assert keeper.held.is_set(), "the renewal was still waiting, not failed"
        finally:
            stall.execute("ROLLBACK")
            stall.close()
        wait_for(keeper.holds, "the lease kept again once the database answers", START_S)
    finally:
        keeper.stop()
