"""Events between the service and the monitor, over HTTP on 127.0.0.1.

The service posts an event each time another `every_rows` predictions are logged; it
never waits for the monitor (a missed event is covered by the monitor's periodic check).
"""

from __future__ import annotations

import logging
import threading
import time

import httpx

from zenloop.config import EventConfig

logger = logging.getLogger(__name__)


class EventEmitter:
    def __init__(self, config: EventConfig):
        self.config = config
        self.sent = 0
        self.failed = 0
        self._next_at = config.every_rows

    def rows_written(self, total: int) -> None:
        """Called by the log writer after each flush with the running total."""
        if self.config.url is None or total < self._next_at:
            return
        self._next_at = (total // self.config.every_rows + 1) * self.config.every_rows
        payload = {"rows_logged": total, "at": time.time()}
        threading.Thread(target=self._post, args=(payload,), daemon=True).start()

    def _post(self, payload: dict) -> None:
        try:
            httpx.post(self.config.url, json=payload, timeout=self.config.timeout_s)
            self.sent += 1
        except httpx.HTTPError:
            self.failed += 1
            logger.debug("monitor did not take the event at %s", self.config.url)
