"""The prediction log writer: group commit, back-pressure instead of drops, restarts, spills."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from api import log_writer
from api.log_writer import PredictionLogWriter, TicketState, replay_spills
from api.settings import PredictionLogConfig
from monitoring.log_store import PredictionLogStore, PredictionRecord
from tests.support.waiting import wait_for

WAIT_S = 10.0  # deadline of every wait below; a healthy run takes milliseconds


def _records(n: int, prefix: str = "r") -> list[PredictionRecord]:
    return [
        PredictionRecord(f"{prefix}{i}", time.time(), "1", {"x": i}, float(i)) for i in range(n)
    ]


class GatedStore(PredictionLogStore):
    """A real store whose writes wait for a gate (a slow or briefly unavailable database)."""

    def __init__(self, url: str, open_gate: bool = False):
        super().__init__(url)
        self.gate = threading.Event()
        if open_gate:
            self.gate.set()
        self.fail_until_open = False
        self.commits = 0

    def append_rows(self, rows):
        self.ping()
        self.gate.wait(WAIT_S)
        self.commits += 1
        return super().append_rows(rows)

    def ping(self):
        if self.fail_until_open and not self.gate.is_set():
            raise ConnectionError("database unavailable")


def _wait_until_failing(writer: PredictionLogWriter) -> None:
    """On the writer's own condition, which it notifies when a write fails."""
    with writer._lock:
        assert writer._lock.wait_for(lambda: writer.failing, WAIT_S)


def test_full_queue_applies_back_pressure_then_refuses_and_loses_nothing(tmp_path):
    store = GatedStore(f"sqlite:///{tmp_path / 'log.db'}")
    config = PredictionLogConfig(
        capacity_rows=10, batch_rows=5, flush_interval_s=0.01, enqueue_timeout_s=0.2
    )
    writer = PredictionLogWriter(store, config).start()
    assert writer.submit(_records(10, "a"))
    started = time.monotonic()
    assert not writer.submit(_records(5, "b")), "no room: the caller must be told"
    assert time.monotonic() - started >= 0.2, "it waited before refusing"
    assert writer.stats.refused_rows == 5
    store.gate.set()
    assert writer.submit(_records(5, "c")), "room again once the writer catches up"
    writer.close()
    assert store.count() == 15
    assert writer.stats.written_rows == 15 and writer.stats.pending_rows == 0


def test_write_failures_are_retried_not_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr(log_writer, "RETRY_BACKOFF_S", 0.05)
    store = GatedStore(f"sqlite:///{tmp_path / 'log.db'}")
    store.fail_until_open = True
    writer = PredictionLogWriter(store, PredictionLogConfig(flush_interval_s=0.01)).start()
    writer.submit(_records(7))
    _wait_until_failing(writer)
    assert writer.stats.write_errors >= 1 and store.count() == 0
    store.gate.set()
    assert writer.wait_written(WAIT_S)
    writer.close()
    assert store.count() == 7


def test_while_the_store_fails_acknowledged_rows_are_refused_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(log_writer, "RETRY_BACKOFF_S", WAIT_S)  # no retry until woken
    store = GatedStore(f"sqlite:///{tmp_path / 'log.db'}")
    store.fail_until_open = True
    writer = PredictionLogWriter(store, PredictionLogConfig(flush_interval_s=0.01)).start()
    waiting = writer.submit(_records(3, "w"), acknowledge=True)
    _wait_until_failing(writer)
    assert writer.submit(_records(1, "x"), wait=False, acknowledge=True) is None
    assert writer.submit(_records(1, "q"), wait=False), "queued mode still queues"
    store.gate.set()  # the writer sleeps in its retry back-off until something wakes it
    assert writer.cancel(waiting), "a request giving up withdraws rows not yet written"
    assert waiting.state is TicketState.CANCELLED
    assert writer.wait_written(WAIT_S)
    writer.close()
    assert store.request_ids() == {"q0"}, "withdrawn rows are never written"


def test_unwritable_rows_at_shutdown_are_spilled_then_replayed_once(tmp_path, monkeypatch):
    monkeypatch.setenv("ZENLOOP_DATA_DIR", str(tmp_path))
    url = f"sqlite:///{tmp_path / 'log.db'}"
    store = GatedStore(url)
    store.fail_until_open = True
    writer = PredictionLogWriter(store, PredictionLogConfig(flush_interval_s=0.01)).start()
    ticket = writer.submit(_records(4), acknowledge=True)
    writer.close(timeout=2.0)
    spills = list(tmp_path.glob("prediction-log-spill-*.jsonl"))
    assert len(spills) == 1 and len(spills[0].read_text().splitlines()) == 4
    assert writer.stats.spilled_rows == 4 and ticket.state is TicketState.SPILLED
    assert not ticket.wait(0), "spilled is not committed: the request was not acknowledged"

    spill = spills[0].read_text()
    other = PredictionLogStore(f"sqlite:///{tmp_path / 'other.db'}")
    assert replay_spills(other) == 0, "another log's spill files are not its own"
    restarted = PredictionLogWriter(PredictionLogStore(url), PredictionLogConfig()).start()
    assert restarted.stats.replayed_rows == 4 and restarted.store.count() == 4
    assert not list(tmp_path.glob("prediction-log-spill-*.jsonl")), "replayed files are removed"
    spills[0].write_text(spill + "{not json\n")  # a crash after the insert, before the unlink
    assert replay_spills(restarted.store) == 0, "a second replay adds nothing"
    assert restarted.store.count() == 4
    assert len(list(tmp_path.glob("*.rejected"))) == 1, "unreadable lines are kept aside"
    restarted.close()


def test_a_batch_larger_than_capacity_is_accepted_when_the_queue_is_empty(tmp_path):
    store = PredictionLogStore(f"sqlite:///{tmp_path / 'log.db'}")
    writer = PredictionLogWriter(store, PredictionLogConfig(capacity_rows=3)).start()
    assert writer.submit(_records(10))
    writer.close()
    assert store.count() == 10


@pytest.mark.parametrize("rows", [1, 250])
def test_rows_are_written_within_the_flush_interval(tmp_path, rows):
    store = PredictionLogStore(f"sqlite:///{tmp_path / 'log.db'}")
    writer = PredictionLogWriter(
        store, PredictionLogConfig(flush_interval_s=0.05, batch_rows=100)
    ).start()
    writer.submit(_records(rows))
    assert writer.wait_written(2.0)
    assert store.count() == rows
    writer.close()


def test_acknowledged_rows_are_group_committed(tmp_path):
    """Concurrent requests share commits, and each is released once its rows are in."""
    store = GatedStore(f"sqlite:///{tmp_path / 'log.db'}", open_gate=True)
    # a flush interval far beyond the test: only acknowledged rows make the writer commit
    writer = PredictionLogWriter(store, PredictionLogConfig(flush_interval_s=60.0)).start()
    requests = 400

    def request(i: int) -> bool:
        ticket = writer.submit(_records(1, f"g{i}-"), acknowledge=True)
        committed = ticket.wait(WAIT_S)
        return committed and f"g{i}-0" in store.request_ids()

    with ThreadPoolExecutor(16) as pool:
        assert all(pool.map(request, range(requests)))
    assert store.count() == requests
    assert store.commits < requests, "commits are shared by concurrent requests"
    writer.close()


def test_the_wal_is_checkpointed_on_its_interval_not_after_every_commit(tmp_path):
    store = PredictionLogStore(f"sqlite:///{tmp_path / 'log.db'}")
    rare = PredictionLogWriter(store, PredictionLogConfig(checkpoint_interval_s=600.0)).start()
    for i in range(20):
        assert rare.submit(_records(1, f"r{i}-"), acknowledge=True).wait(WAIT_S)
    assert rare.stats.commits == 20 and rare.stats.checkpoints == 0
    rare.close()
    often = PredictionLogWriter(store, PredictionLogConfig(checkpoint_interval_s=0.01)).start()
    assert often.submit(_records(1, "o-"), acknowledge=True).wait(WAIT_S)
    wait_for(lambda: often.stats.checkpoints >= 1, "a checkpoint after a commit", WAIT_S)
    often.close()


def test_an_event_loop_waits_for_the_commit(tmp_path):
    writer = PredictionLogWriter(
        PredictionLogStore(f"sqlite:///{tmp_path / 'log.db'}"),
        PredictionLogConfig(flush_interval_s=60.0),
    ).start()

    async def acknowledged() -> TicketState:
        ticket = writer.submit(_records(2), acknowledge=True)
        async with asyncio.timeout(WAIT_S):
            return await writer.watch(ticket)

    assert asyncio.run(acknowledged()) is TicketState.COMMITTED
    assert writer.store.count() == 2
    writer.close()


def test_a_dead_writer_is_seen_and_restarted_without_losing_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(log_writer, "RESTART_BACKOFF_S", 0.0)
    died = threading.Event()

    def explode_once(_written: int) -> None:  # e.g. a bug in the events hook
        if not died.is_set():
            died.set()
            raise RuntimeError("boom")

    store = PredictionLogStore(f"sqlite:///{tmp_path / 'log.db'}")
    writer = PredictionLogWriter(
        store, PredictionLogConfig(flush_interval_s=0.01), on_written=explode_once
    ).start()
    writer.submit(_records(3, "a"))
    assert died.wait(WAIT_S)
    writer._thread.join(WAIT_S)
    assert not writer.alive and writer.stats.writer_alive == 0
    assert writer.submit(_records(1, "x"), wait=False, acknowledge=True) is None, "503 at once"
    queued = writer.submit(_records(2, "b"))
    assert writer.revive() and writer.alive
    assert writer.stats.writer_restarts == 1 and writer.stats.writer_alive == 1
    assert queued.wait(WAIT_S), "rows queued while it was dead are written"
    writer.close()
    assert store.request_ids() == {"a0", "a1", "a2", "b0", "b1"}


def test_a_failing_store_with_nothing_left_to_write_is_probed_until_it_answers(
    tmp_path, monkeypatch
):
    """Requests that gave up withdrew their rows: a probe, not a write, ends the outage."""
    monkeypatch.setattr(log_writer, "RETRY_BACKOFF_S", WAIT_S)  # no retry until woken
    monkeypatch.setattr(log_writer, "PROBE_INTERVAL_S", 0.05)
    store = GatedStore(f"sqlite:///{tmp_path / 'log.db'}")
    store.fail_until_open = True
    writer = PredictionLogWriter(store, PredictionLogConfig(flush_interval_s=0.01)).start()
    waiting = writer.submit(_records(2), acknowledge=True)
    _wait_until_failing(writer)
    assert writer.cancel(waiting), "the request gave up: nothing is left to retry"
    assert writer.failing and writer.stats.pending_rows == 0
    store.gate.set()  # the database is back; nothing is queued to show it
    with writer._lock:
        assert writer._lock.wait_for(lambda: not writer.failing, WAIT_S)
    assert writer.submit(_records(1, "after"), acknowledge=True).wait(WAIT_S)
    writer.close()
