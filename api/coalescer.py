"""Work done once per turn of the event loop, for every request that reached it in that turn.

A compiled model costs nearly the same for one row as for a few dozen (the transform is a
fixed number of numpy operations per column block), so under concurrency most of a
single-row request's time was the model's fixed cost, paid once per request. Requests that
reach their prediction in the same turn of the event loop are collected and predicted
together at the end of that turn: no timer, so a lone request waits for nothing. The log
writer is woken the same way (`EndOfTurn`), so a turn's rows share one commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from zenloop.compiled import CompiledModel

logger = logging.getLogger(__name__)

Pending = tuple[CompiledModel, Sequence[dict[str, Any]], asyncio.Future]


class EndOfTurn:
    """Runs `callback` once at the end of the current event-loop turn, however often asked."""

    def __init__(self, callback: Callable[[], None]):
        self.callback = callback
        self._scheduled = False

    def __call__(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._run)

    def _run(self) -> None:
        self._scheduled = False
        self.callback()


class PredictionCoalescer:
    """Collects (model, rows) within one event-loop turn; one `predict` per model."""

    def __init__(self) -> None:
        self._pending: list[Pending] = []
        self._flush_soon = EndOfTurn(self._flush)
        self.calls = 0  # model calls made: fewer than requests when requests were grouped
        self.requests = 0

    def stats(self) -> dict[str, float]:
        """For /metrics: requests predicted here and the model calls they took."""
        return {"requests": float(self.requests), "model_calls": float(self.calls)}

    def predict(self, model: CompiledModel, rows: Sequence[dict[str, Any]]) -> asyncio.Future:
        """A future of `model.predict(rows)`, resolved when this loop turn's group is done."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((model, rows, future))
        self._flush_soon()
        return future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        groups: dict[int, list[Pending]] = {}
        for item in pending:  # a swap mid-turn gives two groups: each request keeps its model
            groups.setdefault(id(item[0]), []).append(item)
        for group in groups.values():
            self._predict_group(group)

    def _predict_group(self, group: list[Pending]) -> None:
        model = group[0][0]
        rows = [row for _, request_rows, _ in group for row in request_rows]
        self.requests += len(group)
        try:
            self.calls += 1
            labels, probabilities = model.predict(rows)
        except Exception:  # one request's rows must not fail the others: each on its own
            logger.debug("group prediction failed; predicting its requests one by one")
            for _, request_rows, future in group:
                self._settle_alone(model, request_rows, future)
            return
        start = 0
        for _, request_rows, future in group:
            stop = start + len(request_rows)
            if not future.cancelled():
                part = probabilities[start:stop] if probabilities is not None else None
                future.set_result((labels[start:stop], part))
            start = stop

    def _settle_alone(
        self, model: CompiledModel, rows: Sequence[dict[str, Any]], future: asyncio.Future
    ) -> None:
        if future.cancelled():
            return
        self.calls += 1
        try:
            future.set_result(model.predict(rows))
        except Exception as exc:
            future.set_exception(exc)
