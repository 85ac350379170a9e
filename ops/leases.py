"""Holding a lease from a process: renewed in the background while held, contended for
while not (when the holder wants it back), given up on exit.

The retrain runner holds the retrain lease its monitoring run took; every monitor contends
for the monitor lease, and only its holder checks. A database that does not answer counts
as a lost lease: the holder stands by until it can renew or take it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from monitoring.state_store import Lease

logger = logging.getLogger(__name__)

RENEWALS_PER_TIMEOUT = 4  # a held lease is renewed this often within its timeout


class LeaseKeeper:
    """Keeps a lease in a background thread; `held` says whether it is ours right now.

    `open_lease` is called in that thread until it succeeds, so a database that is down
    at start delays the lease, not the caller. With `contend_as`, a lease that is not held
    (never taken, lost, or freed) is tried again on every round under that purpose;
    without, a lost lease ends the keeper.
    """

    def __init__(self, open_lease: Callable[[], Lease], timeout_s: float, contend_as: str | None):
        self.open_lease = open_lease
        self.timeout_s = timeout_s
        self.interval_s = timeout_s / RENEWALS_PER_TIMEOUT
        self.kept_at = 0.0  # (monotonic) when the newest successful round began
        self.contend_as = contend_as
        self.lease: Lease | None = None
        self.held = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def _round(self) -> bool:
        """One renewal or attempt; False once a lost lease is not contended for."""
        try:
            self.lease = self.lease or self.open_lease()
            began, now = time.monotonic(), time.time()  # the lease runs from `now` on
            if self.held.is_set():
                kept = self.lease.renew(now)
            else:
                kept = self.contend_as is not None and self.lease.acquire(now, self.contend_as)
        except SQLAlchemyError as exc:
            logger.warning("lease %s: the database does not answer (%s)", self._name(), exc)
            kept = False
        except Exception:  # a keeper thread that died would say `held` for ever
            logger.exception("lease %s: renewal failed; counted as lost", self._name())
            kept = False
        if kept and not self.held.is_set():
            logger.info("lease %s taken", self._name())
        elif not kept and self.held.is_set():
            logger.error("lease %s lost", self._name())
        if kept:
            self.kept_at = began
            self.held.set()
        else:
            self.held.clear()
        return kept or self.contend_as is not None

    def holds(self) -> bool:
        """The lease is ours right now: held, and kept within its timeout. A keeper whose
        renewal hangs (a stalled database) still says `held`, but past the timeout another
        contender may have taken the lease, so from then on it is not counted as ours."""
        return self.held.is_set() and time.monotonic() - self.kept_at < self.timeout_s

    def _name(self) -> str:
        return self.lease.name if self.lease is not None else "(not opened)"

    def _run(self) -> None:
        while self._round() and not self._stop.wait(self.interval_s):
            pass

    def start(self, held: bool = False) -> LeaseKeeper:
        """Start keeping; `held` when the lease was taken already (by whoever handed it on)."""
        if held:
            self.kept_at = time.monotonic()
            self.held.set()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop keeping and give the lease up if it is still ours."""
        self._stop.set()
        self._thread.join()
        if self.lease is not None and self.held.is_set():
            try:
                self.lease.release()
            except SQLAlchemyError:  # it expires by itself
                logger.warning("lease %s not released: the database does not answer", self._name())
            self.held.clear()
