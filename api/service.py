"""What one worker process holds, and how routes reach it.

Routes take the `Service` through `Depends(get_service)` rather than closing over it, so
each route module stands alone and the app factory only wires things together.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from api.metrics import ServiceMetrics
from api.model_state import ModelHolder, Selection, ServedModel
from monitoring.events import EventEmitter
from monitoring.log_store import PredictionLogStore, PredictionRecord
from monitoring.log_writer import PredictionLogWriter
from zenloop.admin_token import resolve_admin_token
from zenloop.config import ServingConfig

logger = logging.getLogger(__name__)


class Service:
    """The served model, the prediction log and its writer, events and metrics."""

    def __init__(self, config: ServingConfig):
        self.config = config
        self.holder = ModelHolder(config)
        self.store = PredictionLogStore(config.log.database_url) if config.log.enabled else None
        self.events = EventEmitter(config.events)
        self.writer = (
            PredictionLogWriter(self.store, config.log, on_written=self.events.rows_written)
            if self.store is not None
            else None
        )
        self.metrics = ServiceMetrics(self._log_stats)

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

    async def log(self, records: list[PredictionRecord]) -> None:
        """Queue records; under back-pressure wait in a thread, then refuse with 503."""
        if self.writer is None or self.writer.submit(records, wait=False):
            return
        if not await run_in_threadpool(self.writer.submit, records):
            raise HTTPException(
                503, "the prediction log backlog is full; the prediction was not served, retry"
            )

    async def load(self, selection: Selection | None = None) -> ServedModel:
        """Load off the event loop (it reads the registry and unpickles), then swap in."""
        model = await run_in_threadpool(self.holder.load, selection)
        self._swapped(model)
        return model

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

    async def poll_registry(self) -> None:
        """Hot reload: follow the alias every `reload_interval_s`; a failed poll changes nothing."""
        while True:
            await asyncio.sleep(self.config.reload_interval_s)
            try:
                previous = self.holder.current
                if await self.refresh():
                    logger.info(
                        "hot reload: %s -> %s",
                        previous.version if previous else None,
                        self.holder.current.version,
                    )
            except Exception:
                logger.exception("registry poll failed; still serving the current model")


def get_service(request: Request) -> Service:
    """The app's one `Service`, put on `app.state` by `create_app`."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]
