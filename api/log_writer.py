"""Writes the prediction log in batches off the request path, without ever dropping rows.

Requests hand over their records as a `Ticket` and a background thread writes them. Two
ways to acknowledge a request:
- durable (`acknowledge=True`): the request waits until its rows are committed. The
  writer then commits as soon as it is free (group commit: rows that arrive while one
  transaction runs go into the next), so the wait is about one commit.
- queued: the request returns once its rows are queued; the writer batches them by size
  (`batch_rows`) or age (`flush_interval_s`). A crash loses what is queued.

When the backlog reaches its capacity, `submit` waits (back-pressure) and finally refuses.
While the store refuses writes, durable submissions are refused at once, so the service
answers 503 instead of piling up requests. If the writer thread dies, `alive` says so and
`revive` starts a new one after a back-off; queued rows survive. `close` drains the
queue; rows that cannot be written are spilled to a JSONL file, which `start` replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from api.settings import PredictionLogConfig
from monitoring.database import default_log_url
from monitoring.log_store import PredictionLogStore, PredictionRecord
from zenloop.paths import data_dir

logger = logging.getLogger(__name__)

RETRY_BACKOFF_S = 0.5
PROBE_INTERVAL_S = 0.5  # how often a failing store with nothing queued is asked again
CLOSE_TIMEOUT_S = 30.0
# a dead writer thread is restarted after this, doubling on repeated deaths up to the max
RESTART_BACKOFF_S = 1.0
MAX_RESTART_BACKOFF_S = 30.0
SPILL_PREFIX = "prediction-log-spill-"
SPILL_KEY_LENGTH = 12
REPLAY_CHUNK_ROWS = 5_000
# spill files written before they were keyed by database: `<prefix><unix time>-<pid>.jsonl`
LEGACY_SPILL = re.compile(r"^\d+-\d+$")


class TicketState(Enum):
    QUEUED = "queued"
    WRITING = "writing"
    COMMITTED = "committed"
    CANCELLED = "cancelled"  # withdrawn by its request before it was written
    SPILLED = "spilled"  # not written at shutdown: in a spill file, replayed at the next start


FINAL_STATES = frozenset({TicketState.COMMITTED, TicketState.CANCELLED, TicketState.SPILLED})


class Ticket:
    """One submission's rows, and the news of their commit."""

    __slots__ = ("records", "acknowledge", "state", "_done", "_futures")

    def __init__(self, records: list[PredictionRecord], acknowledge: bool):
        self.records = records
        self.acknowledge = acknowledge
        self.state = TicketState.QUEUED
        self._done = threading.Event()
        self._futures: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []

    @property
    def committed(self) -> bool:
        return self.state is TicketState.COMMITTED

    def wait(self, timeout: float) -> bool:
        """Block until the rows are committed, spilled or cancelled; True when committed."""
        self._done.wait(timeout)
        return self.committed


@dataclass
class WriterStats:
    pending_rows: int = 0
    written_rows: int = 0
    refused_rows: int = 0
    waited_submits: int = 0
    write_errors: int = 0
    spilled_rows: int = 0
    cancelled_rows: int = 0
    replayed_rows: int = 0
    writer_alive: int = 0
    writer_restarts: int = 0
    store_failing: int = 0
    commits: int = 0
    checkpoints: int = 0


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
        self._queue: deque[Ticket] = deque()
        self._queued_rows = 0
        self._lock = threading.Condition()
        self._closing = threading.Event()  # set by `close`; the checkpoints wait on it
        self._submitted = 0
        self._settled = 0  # rows written, cancelled or spilled
        self._first_queued_at = 0.0
        self._acknowledged_queued = 0  # queued tickets whose requests wait for the commit
        self._thread: threading.Thread | None = None
        self._died_at: float | None = None
        self._restart_backoff = RESTART_BACKOFF_S

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> PredictionLogWriter:
        """Replay spill files of this log, then start writing (and checkpointing a WAL)."""
        self.stats.replayed_rows += replay_spills(self.store)
        self._spawn()
        if self.store.has_wal:
            threading.Thread(
                target=self._checkpoints, name="prediction-log-checkpoints", daemon=True
            ).start()
        return self

    def _checkpoints(self) -> None:
        """Checkpoint the WAL every `checkpoint_interval_s` until the writer closes.

        It waits on an event of its own: on the writer's condition, every commit's
        notification woke it, and it checkpointed after every commit instead.
        """
        checkpointed = -1  # rows written at the last checkpoint: none yet
        while not self._closing.wait(self.config.checkpoint_interval_s):
            written = self.stats.written_rows
            if written == checkpointed:  # nothing new in the WAL: an idle service stays idle
                continue
            try:
                self.store.checkpoint()
                checkpointed = written
                self.stats.checkpoints += 1
            except Exception as exc:  # busy or briefly unavailable: the next one catches up
                logger.debug("prediction log checkpoint skipped: %s", exc)

    def _spawn(self) -> None:
        self._thread = threading.Thread(
            target=self._main, name="prediction-log-writer", daemon=True
        )
        self.stats.writer_alive = 1
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def failing(self) -> bool:
        """The last write failed and none has succeeded since."""
        return bool(self.stats.store_failing)

    def revive(self) -> bool:
        """Start a new writer thread if the last one died and its back-off passed."""
        with self._lock:
            if self._closing.is_set() or self.alive or self._died_at is None:
                return False
            if time.monotonic() < self._died_at + self._restart_backoff:
                return False
            self._restart_backoff = min(self._restart_backoff * 2, MAX_RESTART_BACKOFF_S)
            self._died_at = None
            self.stats.writer_restarts += 1
            self._requeue([t for t in self._queue if t.state is TicketState.WRITING])
            self._spawn()
        logger.warning("prediction log writer restarted (%d so far)", self.stats.writer_restarts)
        return True

    def _main(self) -> None:
        try:
            self._run()
        except BaseException:  # the thread ends here; `revive` starts another
            logger.critical(
                "prediction log writer died; it restarts after a back-off", exc_info=True
            )
            with self._lock:
                self._died_at = time.monotonic()
                self.stats.writer_alive = 0
                self._lock.notify_all()

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Stop accepting, drain what was accepted, and spill anything that cannot be written."""
        with self._lock:
            self._closing.set()
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            leftover = [t for t in self._queue if t.state not in FINAL_STATES]
            self._queue.clear()
            self._queued_rows = 0
        if leftover:
            self._spill([r for t in leftover for r in t.records])
            self._settle(leftover, TicketState.SPILLED)

    # -- requests -------------------------------------------------------------------------
    def submit(
        self,
        records: list[PredictionRecord],
        wait: bool = True,
        acknowledge: bool = False,
        wake: bool = True,
    ) -> Ticket | None:
        """Queue records; None when there was no room (within the timeout if `wait`).

        With `acknowledge`, the caller will wait for the commit: the writer commits soon,
        and while nothing can be written (failing store, dead writer) the rows are refused
        at once. With `wake=False` the caller calls `wake()` once it has queued everything
        it has at hand, so one commit takes it all.
        """
        deadline = time.monotonic() + (self.config.enqueue_timeout_s if wait else 0.0)
        with self._lock:
            if self._closing.is_set() or (acknowledge and (self.failing or not self.alive)):
                return None
            waited = False
            # A batch larger than the whole capacity is let in once the queue is empty.
            while (
                self._queued_rows and self._queued_rows + len(records) > self.config.capacity_rows
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.stats.refused_rows += len(records) if wait else 0
                    return None
                waited = True
                self._lock.wait(remaining)
                if self._closing.is_set():  # close() may have taken the leftovers meanwhile
                    return None
            self.stats.waited_submits += waited
            ticket = Ticket(records, acknowledge)
            was_empty = not self._queued_rows
            if was_empty:
                self._first_queued_at = time.monotonic()
            self._queue.append(ticket)
            self._queued_rows += len(records)
            self._submitted += len(records)
            self.stats.pending_rows = self._queued_rows
            # Wake the writer only when it has something new to decide: waking it on every
            # request would hand the GIL back and forth once per prediction.
            urgent = acknowledge and not self._acknowledged_queued
            self._acknowledged_queued += acknowledge
            if wake and (was_empty or urgent or self._queued_rows >= self.config.batch_rows):
                self._lock.notify_all()
        return ticket

    def wake(self) -> None:
        """Let the writer look at the queue now (after submits with `wake=False`)."""
        with self._lock:
            self._lock.notify_all()

    def watch(self, ticket: Ticket) -> asyncio.Future:
        """A future of the running event loop, resolved with the ticket's final state."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            if ticket.state in FINAL_STATES:
                future.set_result(ticket.state)
            else:
                ticket._futures.append((loop, future))
        return future

    def cancel(self, ticket: Ticket) -> bool:
        """Withdraw rows not yet being written (a request giving up); True when withdrawn."""
        with self._lock:
            if ticket.state is not TicketState.QUEUED:
                return False
            ticket.state = TicketState.CANCELLED
            self._acknowledged_queued -= ticket.acknowledge
            self._queued_rows -= len(ticket.records)
            self._settled += len(ticket.records)
            self.stats.cancelled_rows += len(ticket.records)
            self.stats.pending_rows = self._queued_rows
            self._lock.notify_all()
        self._settle([ticket], TicketState.CANCELLED)
        return True

    def wait_written(self, timeout: float) -> bool:
        """Block until every row submitted so far is settled (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._submitted
            while self._settled < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    # -- the writer thread ----------------------------------------------------------------
    def _due(self) -> float:
        """Seconds until the queue should be written (0: now)."""
        # group commit: a waiting request is written as soon as the writer is free (rows
        # that arrive during one transaction go into the next); a pause to collect more
        # was measured to cost throughput, not save it
        if (
            self._closing.is_set()
            or self._acknowledged_queued
            or self._queued_rows >= self.config.batch_rows
        ):
            return 0.0
        return self._first_queued_at + self.config.flush_interval_s - time.monotonic()

    def _take_batch(self) -> list[Ticket] | None:
        """Wait until a batch is due, then mark it as being written (in queue order).

        None once closing and drained. An empty batch asks for a probe of a failing
        store: its waiting rows were withdrawn, and only a probe can tell it is back.
        """
        with self._lock:
            while True:
                while self._queue and self._queue[0].state is TicketState.CANCELLED:
                    self._queue.popleft()
                if not self._queued_rows:
                    if self._closing.is_set():
                        return None
                    if self.stats.store_failing:
                        self._lock.wait(PROBE_INTERVAL_S)
                        return []
                    self._lock.wait(self.config.flush_interval_s)
                    continue
                remaining = self._due()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            batch, rows = [], 0
            for ticket in self._queue:
                if rows >= self.config.batch_rows:
                    break
                if ticket.state is TicketState.QUEUED:
                    ticket.state = TicketState.WRITING
                    self._acknowledged_queued -= ticket.acknowledge
                    batch.append(ticket)
                    rows += len(ticket.records)
            return batch

    def _requeue(self, tickets: list[Ticket]) -> None:
        """Tickets whose write did not happen are queued again (call under the lock)."""
        for ticket in tickets:
            ticket.state = TicketState.QUEUED
            self._acknowledged_queued += ticket.acknowledge

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return  # closing and drained
            if not batch:
                self._probe()
                continue
            try:  # idempotent on request ids: a batch retried after a crash cannot fail on them
                self.store.append_rows([r.to_row() for t in batch for r in t.records])
            except Exception:  # the database may be briefly unavailable: keep rows, retry
                self._failed(batch)
                if self._closing.is_set():
                    return
                continue
            self._committed(batch)
            if self.on_written is not None:
                self.on_written(self.stats.written_rows)

    def _probe(self) -> None:
        """Clear `failing` once the store answers again, though no rows wait to prove it."""
        try:
            self.store.ping()
        except Exception:
            logger.debug("prediction log store still unavailable", exc_info=True)
            return
        with self._lock:
            self.stats.store_failing = 0
            self._lock.notify_all()
        logger.warning("prediction log store answers again")

    def _failed(self, batch: list[Ticket]) -> None:
        rows = sum(len(t.records) for t in batch)
        log = logger.debug if self.stats.store_failing else logger.exception  # once per outage
        log("prediction log write failed; %d rows kept for retry", rows)
        with self._lock:  # one hold: whoever sees `failing` may rely on the writer waiting
            self._requeue(batch)  # a request giving up meanwhile may still withdraw its rows
            self.stats.write_errors += 1
            self.stats.store_failing = 1
            self._lock.notify_all()
            if not self._closing.is_set():
                self._lock.wait(RETRY_BACKOFF_S)

    def _committed(self, batch: list[Ticket]) -> None:
        rows = sum(len(t.records) for t in batch)
        if self.stats.store_failing:
            logger.warning("prediction log writes succeed again")
        with self._lock:
            self._remove(batch)
            self._queued_rows -= rows
            self._settled += rows
            if not self._queued_rows:
                self._first_queued_at = time.monotonic()
            self.stats.store_failing = 0
            self.stats.pending_rows = self._queued_rows
            self.stats.written_rows += rows
            self.stats.commits += 1
            self._lock.notify_all()
        self._settle(batch, TicketState.COMMITTED)

    def _remove(self, batch: list[Ticket]) -> None:
        """Drop a written batch from the queue; it sits at the front, among cancelled tickets."""
        taken = {id(t) for t in batch}
        kept: list[Ticket] = []
        while taken and self._queue:
            ticket = self._queue.popleft()
            if id(ticket) in taken:
                taken.discard(id(ticket))
            elif ticket.state is not TicketState.CANCELLED:
                kept.append(ticket)
        self._queue.extendleft(reversed(kept))

    def _settle(self, tickets: list[Ticket], state: TicketState) -> None:
        """Give tickets their final state and wake whoever waits: one call per event loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future]] = {}
        with self._lock:
            for ticket in tickets:
                ticket.state = state
                for loop, future in ticket._futures:
                    by_loop.setdefault(loop, []).append(future)
                ticket._futures = []
        for ticket in tickets:
            ticket._done.set()
        for loop, futures in by_loop.items():
            _resolve_soon(loop, futures, state)

    def _spill(self, records: list[PredictionRecord]) -> None:
        path = Path(data_dir()) / (
            f"{SPILL_PREFIX}{spill_key(self.store.url)}-{int(time.time())}-{os.getpid()}.jsonl"
        )
        with path.open("a") as f:
            for record in records:
                f.write(json.dumps(record.to_row()) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.stats.spilled_rows += len(records)
        logger.error("prediction log: %d unwritten rows spilled to %s", len(records), path)


def _resolve_soon(
    loop: asyncio.AbstractEventLoop, futures: list[asyncio.Future], state: TicketState
) -> None:
    def resolve() -> None:
        for future in futures:
            if not future.done():  # a request that timed out has cancelled its future
                future.set_result(state)

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        loop.call_soon_threadsafe(resolve)


def spill_key(url: str) -> str:
    """Spill files name the log they belong to, so a start-up replays only its own."""
    return hashlib.sha256(url.encode()).hexdigest()[:SPILL_KEY_LENGTH]


def spill_files(store: PredictionLogStore) -> list[Path]:
    """This log's spill files, oldest first (legacy unkeyed ones belong to the default log)."""
    folder = Path(data_dir())
    key = spill_key(store.url)
    files = sorted(folder.glob(f"{SPILL_PREFIX}{key}-*.jsonl"))
    if store.url == default_log_url():
        legacy = folder.glob(f"{SPILL_PREFIX}*.jsonl")
        files += [p for p in legacy if LEGACY_SPILL.match(p.stem.removeprefix(SPILL_PREFIX))]
    return files


def replay_spills(store: PredictionLogStore) -> int:
    """Insert spilled rows into the log, skipping request ids already there; rows added.

    Idempotent: a file is deleted only after its rows are committed, and a second replay
    of the same rows adds nothing (so workers of one service may replay at once).
    Unreadable lines are counted and left in a `.rejected` copy for an operator.
    """
    added = 0
    for path in spill_files(store):
        rows, bad = [], []
        try:
            text = path.read_text()
        except FileNotFoundError:  # another worker of the service replayed it first
            continue
        for line in text.splitlines():
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or "request_id" not in row:
                    raise ValueError("not a logged row")
                rows.append(row)
            except ValueError:
                bad.append(line)
        for start in range(0, len(rows), REPLAY_CHUNK_ROWS):
            added += store.append_rows(rows[start : start + REPLAY_CHUNK_ROWS])
        if bad:
            path.with_suffix(".rejected").write_text("\n".join(bad) + "\n")
            logger.error("%s: %d unreadable lines kept in a .rejected file", path, len(bad))
        path.unlink(missing_ok=True)
        logger.warning("prediction log: replayed %d spilled rows from %s", len(rows), path)
    return added
