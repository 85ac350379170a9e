"""What one worker process holds, and how routes reach it.

Routes take the `Service` through `Depends(get_service)` rather than closing over it, so
each route module stands alone and the app factory only wires things together.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from api.coalescer import EndOfTurn, PredictionCoalescer
from api.events import EventEmitter
from api.log_writer import PredictionLogWriter, Ticket, TicketState
from api.metrics import ServiceMetrics
from api.model_state import ModelHolder, Selection, ServedModel
from api.schemas import RegistryState
from api.settings import ServingConfig, ServingSettings
from api.shared_selection import SelectionBoard
from monitoring.log_store import PredictionLogStore, PredictionRecord
from zenloop.admin_token import resolve_admin_token
from zenloop.waiting import poll_until_async

logger = logging.getLogger(__name__)

WATCHDOG_INTERVAL_S = 0.5  # how often a dead log writer is looked for
# registry polls back off up to this many reload intervals (and this many seconds) in an outage
REGISTRY_BACKOFF_FACTOR = 16
MAX_REGISTRY_BACKOFF_S = 120.0
UNAVAILABLE = 503


class RegistryHealth:
    """Whether the registry answers; an outage is logged once, when it starts and ends."""

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self.state = RegistryState(reachable=True)
        self.delay_s = interval_s

    def succeeded(self) -> float:
        """Record a good poll; the delay until the next one."""
        if not self.state.reachable:
            logger.warning(
                "model registry reachable again after %.0fs", time.time() - self.state.since
            )
        self.state = RegistryState(reachable=True, checked_at=time.time())
        self.delay_s = self.interval_s
        return self.delay_s

    def failed(self, exc: Exception, serving: str | None) -> float:
        """Record a failed poll; the (growing) delay until the next one."""
        now = time.time()
        if self.state.reachable:
            logger.warning(
                "model registry unreachable (%s); still serving %s; retrying with back-off",
                exc,
                f"v{serving}" if serving else "nothing",
            )
            self.state = RegistryState(reachable=False, since=now)
        else:
            logger.debug("model registry still unreachable: %s", exc)
        self.state = self.state.model_copy(update={"error": str(exc), "checked_at": now})
        cap = min(self.interval_s * REGISTRY_BACKOFF_FACTOR, MAX_REGISTRY_BACKOFF_S)
        self.delay_s = min(self.delay_s * 2, max(cap, self.interval_s))
        return self.delay_s


class Service:
    """The served model, the prediction log and its writer, events and metrics."""

    def __init__(self, config: ServingConfig):
        self.config = config
        self.settings = ServingSettings.resolve(config)
        self.holder = ModelHolder(config)
        self.registry = RegistryHealth(config.reload_interval_s)
        self.store = PredictionLogStore(config.log.database_url) if config.log.enabled else None
        self.events = EventEmitter(config.events, lambda: self.admin_token)
        self.writer = (
            PredictionLogWriter(self.store, config.log, on_written=self.events.rows_written)
            if self.store is not None
            else None
        )
        self.coalescer = PredictionCoalescer()
        # several workers: admin loads reach one, the board carries them to the others
        self.board = SelectionBoard.of(config) if config.workers > 1 else None
        self.generation = 0  # the board generation this worker serves
        self.metrics = ServiceMetrics(self._log_stats, self.coalescer.stats)
        # the writer is woken once per event-loop turn, after every request of the turn
        # queued its rows, so they share one commit (woken at the first request's rows, it
        # committed those alone while the others waited for the GIL, then committed again)
        self._wake_writer_soon = EndOfTurn(self.writer.wake) if self.writer else None
        # told of every model swapped in (a deployment tags itself with the version)
        self.on_swap: list[Callable[[ServedModel], None]] = []

    @property
    def admin_token(self) -> str | None:
        """Resolved per call: a token file created after start-up takes effect at once."""
        return resolve_admin_token(self.config.admin_token)

    def _log_stats(self) -> dict[str, float]:
        if self.writer is None:
            return {}
        stats = {k: float(v) for k, v in asdict(self.writer.stats).items()}
        return stats | {"events_sent": self.events.sent, "events_failed": self.events.failed}

    def model(self) -> ServedModel:
        """The model to use for the whole request (read once: a swap never splits a request)."""
        model = self.holder.current
        if model is None:
            raise HTTPException(503, "no model is loaded yet; see /ready")
        return model

    def unready_reason(self) -> str | None:
        """Why the service should not get traffic now; None when it may."""
        if self.holder.current is None:
            return "no model is loaded yet"
        if self.writer is not None and not self.writer.alive:
            return "the prediction log writer died; it restarts shortly"
        if self.writer is not None and self.writer.failing:
            return "the prediction log cannot be written; predictions are refused"
        return None

    async def log(self, records: list[PredictionRecord]) -> None:
        """Hand records to the log; with durable acknowledgement, wait for their commit.

        Under back-pressure it waits in a thread for room. When the rows cannot be queued
        or committed in time, the answer is a 503 and the prediction is not returned.
        """
        writer = self.writer
        if writer is None:
            return
        durable = self.settings.durable
        ticket = writer.submit(records, wait=False, acknowledge=durable, wake=False)
        self._wake_writer_soon()
        if ticket is None and not (durable and (writer.failing or not writer.alive)):
            ticket = await run_in_threadpool(writer.submit, records, True, durable)
        if ticket is None:
            raise HTTPException(
                UNAVAILABLE,
                "the prediction log cannot take rows now; the prediction was not served, retry",
            )
        if durable:
            await self._committed(ticket)

    async def _committed(self, ticket: Ticket) -> None:
        """Wait for the commit; a ticket still queued at the deadline is withdrawn (503)."""
        writer, timeout = self.writer, self.config.log.enqueue_timeout_s
        state = None
        try:
            async with asyncio.timeout(timeout):
                state = await writer.watch(ticket)
        except TimeoutError:
            if not writer.cancel(ticket):  # being written right now: wait for that write
                try:
                    async with asyncio.timeout(timeout):
                        state = await writer.watch(ticket)
                except TimeoutError:
                    state = None
        if state is not TicketState.COMMITTED:
            raise HTTPException(
                UNAVAILABLE,
                "the prediction log did not commit the prediction in time; it was not served,"
                " retry",
            )

    async def load(self, selection: Selection | None = None) -> ServedModel:
        """Load off the event loop (it reads the registry and unpickles), then swap in."""
        model = await run_in_threadpool(self.holder.load, selection)
        self._swapped(model)
        return model

    async def start(self) -> None:
        """The first load: what the other workers serve, if they were switched, else the config."""
        shared = self.board.read() if self.board is not None else None
        await self.load(shared.selection if shared else None)
        if shared is not None:
            self._serving_generation(shared.generation)

    def _serving_generation(self, generation: int) -> None:
        self.generation = generation
        self.board.acknowledge(generation)

    async def share(self) -> int:
        """After an admin load in this worker: every live worker serves it before we answer.

        Returns how many workers serve it; 503 when some did not within the timeout (they
        keep trying: the selection stays on the board).
        """
        if self.board is None:
            return 1
        model, selection = self.holder.current, self.holder.selection
        exact = Selection(selection.alias, model.version, selection.local_path)
        self._serving_generation(await run_in_threadpool(self.board.publish, exact))
        timeout = self.config.workers_sync_timeout_s
        serving = 0

        async def everyone() -> bool:
            nonlocal serving
            serving = self.board.serving(self.generation)
            return serving >= self.config.workers

        if not await poll_until_async(everyone, timeout, self.config.workers_sync_interval_s / 2):
            raise HTTPException(
                UNAVAILABLE,
                f"v{model.version} is served by {serving} of {self.config.workers} workers"
                f" after {timeout:.0f}s; the others keep trying to load it",
            )
        return serving

    async def follow_board(self) -> None:
        """With several workers: serve what an admin load in another worker chose."""
        while self.board is not None:
            await asyncio.sleep(self.config.workers_sync_interval_s)
            await self.follow_once()

    async def follow_once(self) -> None:
        shared = self.board.changed()
        if shared is None or shared.generation <= self.generation:
            return
        try:
            await self.load(shared.selection)
        except Exception as exc:  # e.g. the registry is down: the next change retries
            self.board.forget_change()
            logger.warning("cannot serve the shared selection %s: %s", shared.selection, exc)
            return
        self._serving_generation(shared.generation)

    async def refresh(self) -> bool:
        """Follow the alias now; True when another version was swapped in."""
        if not await run_in_threadpool(self.holder.refresh):
            return False
        self._swapped(self.holder.current)
        return True

    def _swapped(self, model: ServedModel) -> None:
        self.metrics.reloads.inc()
        if model.version.isdigit():
            self.metrics.model_version.set(int(model.version))
        for listener in self.on_swap:
            listener(model)

    async def poll_registry(self) -> None:
        """Hot reload: follow the alias every `reload_interval_s`; a failed poll changes nothing.

        In a registry outage the polls back off, and the outage is logged once.
        """
        delay = self.config.reload_interval_s
        while True:
            await asyncio.sleep(delay)
            delay = await self.poll_once()

    async def poll_once(self) -> float:
        """One poll of the followed alias; the delay until the next one."""
        previous = self.holder.current
        self.metrics.registry_polls.inc()
        try:
            swapped = await self.refresh()
        except Exception as exc:
            self.metrics.registry_errors.inc()
            self.metrics.registry_reachable.set(0)
            return self.registry.failed(exc, previous.version if previous else None)
        self.metrics.registry_reachable.set(1)
        if swapped:
            before = previous.version if previous else None
            logger.info("hot reload: %s -> %s", before, self.holder.current.version)
        return self.registry.succeeded()

    async def watch_writer(self) -> None:
        """Restart a dead log writer (after its back-off); /ready is 503 meanwhile."""
        while self.writer is not None:
            await asyncio.sleep(WATCHDOG_INTERVAL_S)
            self.writer.revive()


async def get_service(request: Request) -> Service:
    """The app's one `Service`, put on `app.state` by `create_app`.

    Async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread hop
    that cost every prediction more than its model did.
    """
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]
