"""Replays labelled rows as live traffic: predictions, then their ground truth as feedback.

`zenloop replay` sends a user's own rows this way; the demo, the benchmarks and the
end-to-end tests use it too. Bounded in rows and time, and only ever aimed at the
service's own address; the error is kept per served version as the rows go by.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import numpy as np
import pandas as pd

from zenloop.deployment import request_rows
from zenloop.metrics import metric_named, score
from zenloop.progress import progress

REQUEST_TIMEOUT_S = 60.0
LOGGED_NOTES = 10  # without a terminal, the live error is logged this many times in all


def _label_key(value) -> str:
    """Labels compare as numbers when they are (a file's 1.0 is the model's 1), else as text."""
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return str(value)


@dataclass
class ReplayResult:
    """What a replay sent and each served version's primary metric on the rows it served."""

    metric: str = "rmse"
    classes: list | None = None
    sent: int = 0
    failed: int = 0
    feedback: int = 0
    seconds: float = 0.0
    # version -> (truth, prediction, class probabilities) of each labelled row it served
    served: dict[str, list[tuple]] = field(default_factory=dict)
    versions: list[str] = field(default_factory=list)  # the version of each batch

    def rows(self, version: str | None = None) -> list[tuple]:
        if version is not None:
            return self.served.get(version, [])
        return [row for rows in self.served.values() for row in rows]

    def error(self, version: str | None = None) -> float:
        """The primary metric of one version on the labelled rows it served (or of all)."""
        rows = self.rows(version)
        if not rows:
            return float("nan")
        metric = metric_named(self.metric)
        if metric.task == "regression":
            y = np.array([float(truth) for truth, _, _ in rows])
            return score(metric, y, np.array([float(p) for _, p, _ in rows]), None)
        index = {_label_key(c): i for i, c in enumerate(self.classes or [])}
        names = [str(c) for c in self.classes or []]
        y = np.array([index.get(_label_key(truth), -1) for truth, _, _ in rows])
        known = y >= 0  # a label the model never saw cannot be scored as a class of it
        proba = np.array([[float((p or {}).get(n, 0.0)) for n in names] for _, _, p in rows])
        if not known.any():
            return float("nan")
        return score(metric, y[known], proba[known].argmax(axis=1), proba[known])

    def summary(self) -> str:
        """The metric per served version, oldest first; each on the rows it served."""
        return ", ".join(
            f"v{version} {self.metric} {self.error(version):.4g} on {len(rows)} rows"
            for version, rows in self.served.items()
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
    metric: str = "rmse",
    classes: list | None = None,
    rate: float | None = None,
    feedback: bool = True,
) -> ReplayResult:
    """Send `frame` in batches; stop at its end, at `max_seconds`, or once `until(version)`.

    With `feedback` and a token, each batch's ground truth follows it to `/feedback`.
    `rate` caps the rows sent per second; `pause_s` waits after every batch.
    """
    result = ReplayResult(metric=metric, classes=classes)
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
            result.served.setdefault(version, []).extend(
                (actual, p["prediction"], p.get("probabilities")) for p, actual in labelled
            )
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
