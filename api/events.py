"""Events between the service and the monitor, over HTTP on 127.0.0.1.

The service posts an event each time another `every_rows` predictions are logged; it
never waits for the monitor (a missed event is covered by the monitor's periodic check).
Events carry the service's admin token: the monitor takes them from no one else.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import httpx

from api.settings import EventConfig

logger = logging.getLogger(__name__)


class EventEmitter:
    def __init__(self, config: EventConfig, token: Callable[[], str | None]):
        self.config = config
        self.token = token  # read at each event: the token file may appear after start-up
        self.sent = 0
        self.failed = 0
        self.refused = 0  # answered, but not taken (a token mismatch): logged the first time
        self._next_at = config.every_rows
        # one client for every event (building one costs milliseconds of CPU: TLS context),
        # and one event in flight at most: a slow monitor never piles up threads
        self._client: httpx.Client | None = None
        self._in_flight = threading.Lock()

    def rows_written(self, total: int) -> None:
        """Called by the log writer after each flush with the running total."""
        if self.config.url is None or total < self._next_at:
            return
        self._next_at = (total // self.config.every_rows + 1) * self.config.every_rows
        if not self._in_flight.acquire(blocking=False):
            return  # the event in flight already tells the monitor that rows arrived
        payload = {"rows_logged": total, "at": time.time()}
        threading.Thread(target=self._post, args=(payload,), daemon=True).start()

    def _post(self, payload: dict) -> None:
        try:
            self._send(payload)
        finally:
            self._in_flight.release()

    def _send(self, payload: dict) -> None:
        token = self.token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if self._client is None:
            self._client = httpx.Client(timeout=self.config.timeout_s)
        try:
            response = self._client.post(self.config.url, json=payload, headers=headers)
        except httpx.HTTPError:
            self.failed += 1
            logger.debug("monitor did not take the event at %s", self.config.url)
            return
        if response.is_success:
            self.sent += 1
            return
        self.failed += 1
        self.refused += 1
        if self.refused == 1:
            logger.warning(
                "the monitor at %s refused an event (%s %s): do the service and the monitor "
                "share the admin token (ZENLOOP_ADMIN_TOKEN or the data folder's token file)?",
                self.config.url,
                response.status_code,
                response.text[:200],
            )
