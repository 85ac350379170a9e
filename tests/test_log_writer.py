"""The prediction log writer: batches, back-pressure instead of drops, drains on close."""

import threading
import time

import pytest

from monitoring import log_writer
from monitoring.log_store import PredictionLogStore, PredictionRecord
from monitoring.log_writer import PredictionLogWriter
from zenloop.config import PredictionLogConfig


def _records(n: int, prefix: str = "r") -> list[PredictionRecord]:
    return [
        PredictionRecord(f"{prefix}{i}", time.time(), "1", {"x": i}, float(i)) for i in range(n)
    ]


class GatedStore(PredictionLogStore):
    """A real store whose writes wait for a gate (a slow or briefly unavailable database)."""

    def __init__(self, url: str):
        super().__init__(url)
        self.gate = threading.Event()
        self.fail_until_open = False

    def append(self, records):
        if self.fail_until_open and not self.gate.is_set():
            raise ConnectionError("database unavailable")
        self.gate.wait(10)
        super().append(records)


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
    time.sleep(0.3)
    assert writer.stats.write_errors >= 1 and store.count() == 0
    store.gate.set()
    assert writer.wait_written(5.0)
    writer.close()
    assert store.count() == 7


def test_unwritable_rows_at_shutdown_are_spilled_to_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ZENLOOP_DATA_DIR", str(tmp_path))
    store = GatedStore(f"sqlite:///{tmp_path / 'log.db'}")
    store.fail_until_open = True
    writer = PredictionLogWriter(store, PredictionLogConfig(flush_interval_s=0.01)).start()
    writer.submit(_records(4))
    writer.close(timeout=2.0)
    spills = list(tmp_path.glob("prediction-log-spill-*.jsonl"))
    assert len(spills) == 1 and len(spills[0].read_text().splitlines()) == 4
    assert writer.stats.spilled_rows == 4


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
