"""Writes the prediction log off the request path, in batches, without ever dropping rows.

Requests hand over their records and return; a background thread writes them in batches.
When the backlog reaches its capacity, `submit` waits (back-pressure) and finally refuses,
so a request is only acknowledged once its rows are queued. `close` drains the queue;
rows that cannot be written at shutdown are spilled to a JSONL file, never discarded.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from monitoring.log_store import PredictionLogStore, PredictionRecord
from zenloop.config import PredictionLogConfig
from zenloop.paths import data_dir

logger = logging.getLogger(__name__)

RETRY_BACKOFF_S = 0.5
CLOSE_TIMEOUT_S = 30.0


@dataclass
class WriterStats:
    pending_rows: int = 0
    written_rows: int = 0
    refused_rows: int = 0
    waited_submits: int = 0
    write_errors: int = 0
    spilled_rows: int = 0


class PredictionLogWriter:
    def __init__(
        self,
        store: PredictionLogStore,
        config: PredictionLogConfig,
        on_written: Callable[[int], None] | None = None,
    ):
        self.store = store
        self.config = config
        self.on_written = on_written
        self.stats = WriterStats()
        self._queue: deque[PredictionRecord] = deque()
        self._lock = threading.Condition()
        self._closing = False
        self._submitted = 0
        self._first_queued_at = 0.0
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)

    def start(self) -> PredictionLogWriter:
        self._thread.start()
        return self

    def submit(self, records: list[PredictionRecord], wait: bool = True) -> bool:
        """Queue records; False when there was no room (within the timeout if `wait`)."""
        deadline = time.monotonic() + (self.config.enqueue_timeout_s if wait else 0.0)
        with self._lock:
            if self._closing:
                return False
            waited = False
            # A batch larger than the whole capacity is let in once the queue is empty.
            while self._queue and len(self._queue) + len(records) > self.config.capacity_rows:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.stats.refused_rows += len(records) if wait else 0
                    return False
                waited = True
                self._lock.wait(remaining)
                if self._closing:  # close() may have taken the leftovers meanwhile
                    return False
            self.stats.waited_submits += waited
            was_empty = not self._queue
            if was_empty:
                self._first_queued_at = time.monotonic()
            self._queue.extend(records)
            self._submitted += len(records)
            self.stats.pending_rows = len(self._queue)
            # Wake the writer only when it has something new to decide: waking it on every
            # request would hand the GIL back and forth once per prediction.
            if was_empty or len(self._queue) >= self.config.batch_rows:
                self._lock.notify_all()
        return True

    def wait_written(self, timeout: float) -> bool:
        """Block until every row submitted so far is in the store (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._submitted
            while self.stats.written_rows < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def _take_batch(self) -> list[PredictionRecord]:
        """Wait for a full batch or for the oldest queued row to be flush_interval_s old."""
        interval, size = self.config.flush_interval_s, self.config.batch_rows
        with self._lock:
            while not self._closing and len(self._queue) < size:
                if not self._queue:
                    self._lock.wait(interval)
                    if not self._queue:
                        return []
                    continue
                remaining = self._first_queued_at + interval - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            n = min(len(self._queue), size)
            return [self._queue[i] for i in range(n)]

    def _release(self, n: int) -> None:
        with self._lock:
            for _ in range(min(n, len(self._queue))):  # close() may have emptied it
                self._queue.popleft()
            self._first_queued_at = time.monotonic()
            self.stats.pending_rows = len(self._queue)
            self.stats.written_rows += n
            self._lock.notify_all()

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                with self._lock:
                    if self._closing and not self._queue:
                        return
                continue
            try:
                self.store.append(batch)
            except Exception:  # the database may be briefly unavailable: keep rows, retry
                self.stats.write_errors += 1
                logger.exception("prediction log write failed; %d rows kept for retry", len(batch))
                with self._lock:
                    if self._closing:
                        return
                time.sleep(RETRY_BACKOFF_S)
                continue
            self._release(len(batch))
            if self.on_written is not None:
                self.on_written(self.stats.written_rows)

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Stop accepting, drain what was accepted, and spill anything that cannot be written."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        self._thread.join(timeout)
        with self._lock:
            leftover = list(self._queue)
            self._queue.clear()
        if leftover:
            self._spill(leftover)

    def _spill(self, records: list[PredictionRecord]) -> None:
        path = Path(data_dir()) / f"prediction-log-spill-{int(time.time())}-{os.getpid()}.jsonl"
        with path.open("a") as f:
            for record in records:
                f.write(json.dumps(record.to_row()) + "\n")
        self.stats.spilled_rows += len(records)
        logger.error("prediction log: %d unwritten rows spilled to %s", len(records), path)
