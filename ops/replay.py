"""Replays labelled rows as live traffic: predictions, then their ground truth as feedback.

`zenloop replay` sends a user's own rows this way; the demo, the benchmarks and the
end-to-end tests use it too. Bounded in rows and time, and only ever aimed at the
service's own address; the error is kept per served version as the rows go by.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pandas as pd

from zenloop.config import Task
from zenloop.deployment import request_rows
from zenloop.progress import progress

REQUEST_TIMEOUT_S = 60.0
LOGGED_NOTES = 10  # without a terminal, the live error is logged this many times in all
ERROR_NAMES = {"regression": "rmse", "classification": "error rate"}


def row_error(predicted, actual, task: Task) -> float:
    """Squared error for regression; for classes 1 when the label is wrong, else 0."""
    if task == "regression":
        return (float(predicted) - float(actual)) ** 2
    return float(not same_label(predicted, actual))


def same_label(predicted, actual) -> bool:
    """Labels compare as numbers when both are (a file's 1.0 is the model's 1), else as text."""
    try:
        return float(predicted) == float(actual)
    except (TypeError, ValueError):
        return str(predicted) == str(actual)


@dataclass
class ReplayResult:
    task: Task = "regression"
    sent: int = 0
    failed: int = 0
    feedback: int = 0
    seconds: float = 0.0
    errors: dict[str, list[float]] = field(default_factory=dict)  # version -> row errors
    versions: list[str] = field(default_factory=list)  # the version of each batch

    @property
    def metric(self) -> str:
        return ERROR_NAMES[self.task]

    def error(self, version: str | None = None) -> float:
        """RMSE (regression) or error rate (classification) of one version, or of all rows."""
        rows = (
            self.errors.get(version, [])
            if version is not None
            else [e for errors in self.errors.values() for e in errors]
        )
        if not rows:
            return float("nan")
        mean = sum(rows) / len(rows)
        return math.sqrt(mean) if self.task == "regression" else mean

    def summary(self) -> str:
        """The error per served version, oldest first."""
        return ", ".join(
            f"v{version} {self.metric} {self.error(version):.4g} on {len(errors)} rows"
            for version, errors in self.errors.items()
        )


def replay(
    url: str,
    frame: pd.DataFrame,
    target: str,
    token: str | None,
    batch_rows: int = 50,
    max_seconds: float = 300.0,
    pause_s: float = 0.0,
    until: Callable[[str], bool] | None = None,
    task: Task = "regression",
    rate: float | None = None,
    feedback: bool = True,
) -> ReplayResult:
    """Send `frame` in batches; stop at its end, at `max_seconds`, or once `until(version)`.

    With `feedback` and a token, each batch's ground truth follows it to `/feedback`.
    `rate` caps the rows sent per second; `pause_s` waits after every batch.
    """
    result = ReplayResult(task=task)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    features = frame.drop(columns=[target])
    started = time.monotonic()
    note_every = max(batch_rows, len(frame) // LOGGED_NOTES)
    with (
        httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client,
        progress(f"replaying {len(frame):,} rows", len(frame)) as tracker,
    ):
        for start in range(0, len(frame), batch_rows):
            if time.monotonic() - started > max_seconds:
                break
            if rate is not None and (ahead := start / rate - (time.monotonic() - started)) > 0:
                time.sleep(ahead)
            rows = request_rows(features.iloc[start : start + batch_rows])
            truth = frame[target].iloc[start : start + batch_rows].tolist()
            response = client.post("/predict_batch", json={"rows": rows})
            if response.status_code != 200:
                result.failed += len(rows)
                tracker.advance(len(rows), f"{response.status_code}: {response.text[:200]}")
                continue
            body = response.json()
            version = body["model_version"]
            result.sent += len(rows)
            result.versions.append(version)
            labelled = [
                (p, actual)
                for p, actual in zip(body["predictions"], truth, strict=True)
                if not pd.isna(actual)  # a row without ground truth is only predicted
            ]
            errors = result.errors.setdefault(version, [])
            errors.extend(row_error(p["prediction"], actual, task) for p, actual in labelled)
            if feedback and token and labelled:
                items = [{"request_id": p["request_id"], "ground_truth": a} for p, a in labelled]
                answer = client.post("/feedback", json={"items": items}, headers=headers)
                result.feedback += answer.json()["stored"] if answer.status_code == 200 else 0
            live = tracker.live or (start // note_every != (start + len(rows)) // note_every)
            tracker.advance(len(rows), result.summary() if live else None)
            if until is not None and until(version):
                break
            if pause_s:
                time.sleep(pause_s)
    result.seconds = time.monotonic() - started
    return result
