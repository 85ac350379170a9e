"""The monitor's event endpoint takes events from the service (its admin token) only; its
health answer says the monitor's role as it is now, a long check under way included."""

import threading
import time
from pathlib import Path

import httpx
import pytest

from api.events import EventEmitter
from api.settings import EventConfig
from monitoring.state_store import MONITOR_LEASE, Lease, MonitorStore
from ops.monitor_app import MAX_EVENT_BYTES
from ops.monitor_service import Watcher
from tests.support.serving import ADMIN_TOKEN, free_port
from tests.support.waiting import wait_for
from zenloop.admin_token import ADMIN_TOKEN_ENV
from zenloop.config import MonitorConfig

WAIT_S = 10.0
LEASE_S = 1.0


@pytest.fixture
def monitor(monkeypatch, tmp_path):
    """The monitor's real HTTP app, served as the monitor serves it, on a free port, with
    the service's token in the environment."""
    monkeypatch.setenv(ADMIN_TOKEN_ENV, ADMIN_TOKEN)
    port = free_port()
    config = MonitorConfig(
        events_host="127.0.0.1",
        events_port=port,
        log_database_url=f"sqlite:///{tmp_path / 'log.db'}",
        heartbeat_interval_s=0.2,
        active_lease_timeout_s=LEASE_S,
    )
    watcher = Watcher(Path("unused.yaml"), config)
    server = watcher._serve_events()
    wait_for(lambda: server.started, "the event server", WAIT_S)
    try:
        yield watcher, f"http://127.0.0.1:{port}/events"
    finally:
        server.should_exit = True


def test_events_need_the_admin_token(monitor):
    watcher, url = monitor
    assert httpx.post(url, json={}).status_code == 401
    assert httpx.post(url, json={}, headers={"Authorization": "Bearer guess"}).status_code == 403
    too_big = httpx.post(
        url, content=b"x" * (MAX_EVENT_BYTES + 1), headers={"Authorization": "Bearer guess"}
    )
    assert too_big.status_code == 413
    assert watcher.events == 0 and not watcher.wake.is_set()
    taken = httpx.post(url, json={}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert taken.status_code == 202 and watcher.events == 1 and watcher.wake.is_set()


def test_the_service_sends_its_token_and_counts_refusals(monitor):
    watcher, url = monitor
    config = EventConfig(url=url, every_rows=10)
    service = EventEmitter(config, lambda: ADMIN_TOKEN)
    service.rows_written(10)
    wait_for(lambda: service.sent == 1, "the event", WAIT_S)
    assert watcher.events == 1
    stranger = EventEmitter(config, lambda: "another token")
    stranger.rows_written(10)
    wait_for(lambda: stranger.refused == 1, "the refusal", WAIT_S)
    assert watcher.events == 1 and stranger.sent == 0


def test_the_health_answer_is_the_latest_heartbeat(monitor):
    watcher, url = monitor
    beat = watcher.heartbeat()
    health = httpx.get(url.replace("/events", "/health")).json()
    assert health["pid"] == beat["pid"] and health["checks"] == 0
    assert httpx.get(url.replace("/events", "/elsewhere")).status_code == 404


def test_a_check_that_outlasts_the_lease_shows_the_lost_role_before_it_ends(monitor):
    watcher, url = monitor
    health = url.replace("/events", "/health")
    check_may_end = threading.Event()
    watcher.check = lambda: check_may_end.wait(WAIT_S)  # a check slower than the lease
    watcher.claim.start()
    checking = threading.Thread(target=watcher._check_in_worker)
    try:
        assert watcher.claim.held.wait(WAIT_S)
        watcher.heartbeat()  # as the loop beats before each check
        assert httpx.get(health).json()["role"] == "active"
        checking.start()
        # another monitor takes the lease over, as after this one stalled past the timeout
        other = Lease(MonitorStore(watcher.config.log_database_url), LEASE_S, name=MONITOR_LEASE)
        assert other.acquire(time.time() + 10 * LEASE_S, "the other monitor")
        wait_for(lambda: httpx.get(health).json().get("role") == "standby", "standby", WAIT_S)
        assert checking.is_alive(), "the role was told while the check still ran"
    finally:
        check_may_end.set()
        checking.join(WAIT_S)
        watcher.claim.stop()
