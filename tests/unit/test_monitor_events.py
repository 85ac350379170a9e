"""The monitor's event endpoint takes events from the service (its admin token) only."""

import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from monitoring.events import EventEmitter
from ops.monitor_service import MAX_EVENT_BYTES, Watcher
from tests.support.serving import ADMIN_TOKEN
from tests.support.waiting import wait_for
from zenloop.admin_token import ADMIN_TOKEN_ENV
from zenloop.config import EventConfig, MonitorConfig

WAIT_S = 10.0


@pytest.fixture
def monitor(monkeypatch):
    """The monitor's real HTTP endpoint on a free port, with the service's token in env."""
    monkeypatch.setenv(ADMIN_TOKEN_ENV, ADMIN_TOKEN)
    watcher = Watcher(Path("unused.yaml"), MonitorConfig())
    server = ThreadingHTTPServer(("127.0.0.1", 0), watcher._handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield watcher, f"http://127.0.0.1:{server.server_address[1]}/events"
    finally:
        server.shutdown()


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
