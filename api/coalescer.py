"""Group prediction: the rows of requests that arrive together are predicted in one call.

A compiled model costs nearly the same for one row as for a few dozen (a forest walks all
its trees with a handful of numpy operations per level), so under concurrency most of a
single-row request's time was the model's fixed cost, paid once per request. Requests that
reach their prediction in the same turn of the event loop are collected and predicted
together at the end of that turn: no timer, so a lone request waits for nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from zenloop.compiled import CompiledModel

logger = logging.getLogger(__name__)

Prediction = tuple[list[Any], list[dict[str, float]] | None]


class PredictionCoalescer:
    """Collects (model, rows) within one event-loop turn; one `predict` per model."""

    def __init__(self) -> None:
        self._pending: list[tuple[CompiledModel, Sequence[dict[str, Any]], asyncio.Future]] = []
        self._scheduled = False
        self.calls = 0  # model calls made: fewer than requests when requests were grouped
        self.requests = 0

    def stats(self) -> dict[str, float]:
        """For /metrics: requests predicted here and the model calls they took."""
        return {"requests": float(self.requests), "model_calls": float(self.calls)}

    def predict(self, model: CompiledModel, rows: Sequence[dict[str, Any]]) -> asyncio.Future:
        """A future of `model.predict(rows)`, resolved when this loop turn's group is done."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((model, rows, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        pending, self._pending, self._scheduled = self._pending, [], False
        groups: dict[int, list[tuple[CompiledModel, Sequence[dict[str, Any]], asyncio.Future]]]
        groups = {}
        for item in pending:  # a swap mid-turn gives two groups: each request keeps its model
            groups.setdefault(id(item[0]), []).append(item)
        for group in groups.values():
            self._predict_group(group)

    def _predict_group(
        self, group: list[tuple[CompiledModel, Sequence[dict[str, Any]], asyncio.Future]]
    ) -> None:
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
