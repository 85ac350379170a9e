"""Replays labelled rows as live traffic: predictions, then their ground truth as feedback.

Used by the demo, the loop benchmark and the end-to-end tests. Bounded in rows and time,
and only ever aimed at the service's own 127.0.0.1 address.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pandas as pd

from zenloop.deployment import request_rows
from zenloop.progress import progress

REQUEST_TIMEOUT_S = 60.0


@dataclass
class ReplayResult:
    sent: int = 0
    failed: int = 0
    seconds: float = 0.0
    squared_errors: dict[str, list[float]] = field(default_factory=dict)  # version -> errors
    versions: list[str] = field(default_factory=list)

    def rmse(self, version: str) -> float:
        errors = self.squared_errors.get(version, [])
        return math.sqrt(sum(errors) / len(errors)) if errors else float("nan")


def squared_error(predicted, actual) -> float:
    """Squared error for numbers; for class labels 1 when wrong, so RMSE = sqrt(error rate)."""
    if isinstance(predicted, int | float) and not isinstance(predicted, bool):
        return (float(predicted) - float(actual)) ** 2
    return float(str(predicted) != str(actual))


def replay(
    url: str,
    frame: pd.DataFrame,
    target: str,
    token: str | None,
    batch_rows: int = 50,
    max_seconds: float = 300.0,
    pause_s: float = 0.0,
    until: Callable[[str], bool] | None = None,
) -> ReplayResult:
    """Send `frame` in batches; stop at its end, at `max_seconds`, or once `until(version)`."""
    result = ReplayResult()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    features = frame.drop(columns=[target])
    started = time.monotonic()
    with (
        httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client,
        progress(f"replaying {len(frame)} rows", len(frame)) as tracker,
    ):
        for start in range(0, len(frame), batch_rows):
            if time.monotonic() - started > max_seconds:
                break
            rows = request_rows(features.iloc[start : start + batch_rows])
            truth = frame[target].iloc[start : start + batch_rows].tolist()
            response = client.post("/predict_batch", json={"rows": rows})
            if response.status_code != 200:
                result.failed += len(rows)
                continue
            body = response.json()
            version = body["model_version"]
            result.sent += len(rows)
            tracker.advance(len(rows), f"served by v{version}")
            result.versions.append(version)
            errors = result.squared_errors.setdefault(version, [])
            for prediction, actual in zip(body["predictions"], truth, strict=True):
                errors.append(squared_error(prediction["prediction"], actual))
            if token:
                items = [
                    {"request_id": p["request_id"], "ground_truth": actual}
                    for p, actual in zip(body["predictions"], truth, strict=True)
                ]
                client.post("/feedback", json={"items": items}, headers=headers)
            if until is not None and until(version):
                break
            if pause_s:
                time.sleep(pause_s)
    result.seconds = time.monotonic() - started
    return result
