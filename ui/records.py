"""The loop's history as data: checks, triggers and retrainings from the monitor's records.

Everything here reads the prediction log's database (monitoring.state_store and the log
table), so it is the same after a restart of any process. A retraining is joined with
the check that triggered it and the first row logged after the last clean check before
it: the drift's onset. Its errors before and after are those the retraining recorded:
the drifted champion, the candidate and the best naive baseline on the same held-out
labelled rows; and, after a promotion, both versions on the same later rows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Literal

import sqlalchemy as sa

from monitoring.drift_report import PerformanceCheck
from monitoring.log_store import PredictionLogStore, predictions
from monitoring.state_store import MonitorStore

Order = Literal["newest", "oldest"]
HISTORY_SCAN = 1_000  # checks read to join retrainings with; more than a long day of checks
SECONDS_PER_MINUTE = 60


def _ordered(items: list[dict[str, Any]], order: Order) -> list[dict[str, Any]]:
    """The stores answer newest first; scripts and charts may want oldest first."""
    return items if order == "newest" else list(reversed(items))


def decision_label(check: dict[str, Any]) -> str:
    if check["retrain"]:
        return "retrain"
    if not check["report"].get("counted", True):
        return "not counted"  # too short a window, or the same rows again
    return "drift" if check["drift"] else "no drift"


def check_entry(check: dict[str, Any], with_columns: bool = False) -> dict[str, Any]:
    """One check as the page and scripts see it (the full report only when asked)."""
    report = check["report"]
    entry = {
        "id": check["id"],
        "checked_at": check["checked_at"],
        "model_name": check["model_name"],
        "model_version": check["model_version"],
        "window_rows": check["window_rows"],
        "new_rows": check["new_rows"],
        "drifted_share": check["drifted_share"],
        "drifted_count": report.get("drifted_count"),
        "monitored_columns": len(report.get("columns", [])),
        "prediction_drifted": bool((report.get("prediction") or {}).get("drifted")),
        "drift": bool(check["drift"]),
        "retrain": bool(check["retrain"]),
        "decision": decision_label(check),
        "reason": check["reason"],
        "drift_reason": report.get("reason"),
        "performance": report.get("performance"),
        "baseline_alert": baseline_alert(report.get("performance")),
    }
    if with_columns:
        entry["columns"] = report.get("columns", []) + (
            [report["prediction"]] if report.get("prediction") else []
        )
    return entry


def baseline_alert(performance: dict[str, Any] | None) -> str | None:
    """The check's alert when the champion did worse than a naive forecast, else None."""
    if not performance or not performance.get("behind_baseline"):
        return None
    return PerformanceCheck.model_validate(performance).baseline_alert()


def retrain_outcome(retrain: dict[str, Any]) -> str:
    if retrain["finished_at"] is None:
        return "running"
    if retrain["failed"]:
        return "failed, champion stays"
    if retrain.get("rolled_back_at"):
        return "promoted, then rolled back"
    if retrain["promoted"] and retrain["deployed_version"]:
        return "promoted and deployed"
    if retrain["promoted"]:
        return "promoted, not deployed"
    return "champion stays"


def retrain_entry(
    retrain: dict[str, Any],
    checks_desc: list[dict[str, Any]],
    onset_of: Callable[[dict[str, Any]], float | None],
) -> dict[str, Any]:
    """One retraining with its trigger, outcome, onset-to-serving time and errors.

    `onset_of(trigger)` is when the drift that check saw began: the first drifted row
    logged. The errors before and after are the drifted champion and the retrained
    candidate on the same held-out labelled rows (their promotion metric).
    """
    trigger = next((c for c in checks_desc if c["id"] == retrain["check_id"]), None)
    entry: dict[str, Any] = {
        "id": retrain["id"],
        "model_name": retrain["model_name"],
        "check_id": retrain["check_id"],
        "started_at": retrain["started_at"],
        "finished_at": retrain["finished_at"],
        "outcome": retrain_outcome(retrain),
        "promoted": retrain["promoted"],
        "deployed_version": retrain["deployed_version"],
        "summary": retrain["summary"],
        "trigger": None,
        "onset_at": None,
        "onset_to_serving_s": None,
        "error_metric": retrain["error_metric"],
        "error_before": retrain["error_before"],
        "error_after": retrain["error_after"],
        "error_rows": retrain["error_rows"],
        "error_baseline": retrain.get("error_baseline"),
        "baseline_name": retrain.get("baseline_name"),
        "history": retrain.get("history"),
        "history_scores": json.loads(retrain.get("history_scores") or "{}"),
        "replaced_version": retrain.get("replaced_version"),
        "later_rows": retrain.get("later_rows"),
        "later_before": retrain.get("later_before"),
        "later_after": retrain.get("later_after"),
        "later_baseline": retrain.get("later_baseline"),
        "review": retrain.get("review"),
        "rolled_back_at": retrain.get("rolled_back_at"),
    }
    if trigger is None:
        return entry
    entry["trigger"] = {
        "checked_at": trigger["checked_at"],
        "model_version": trigger["model_version"],
        "drifted_share": trigger["drifted_share"],
        "reason": trigger["reason"],
        "drift_reason": trigger["report"].get("reason"),
    }
    onset_at = onset_of(trigger)
    entry["onset_at"] = onset_at
    if onset_at is not None and retrain["deployed_version"] and retrain["finished_at"]:
        entry["onset_to_serving_s"] = retrain["finished_at"] - onset_at
    return entry


class Records:
    """Read-only views of one database's monitor records and prediction log."""

    def __init__(self, url: str | None):
        self.monitor = MonitorStore(url)
        self.log = PredictionLogStore(url)

    def checks(self, limit: int, order: Order = "newest") -> list[dict[str, Any]]:
        return _ordered([check_entry(c) for c in self.monitor.recent_checks(limit)], order)

    def latest_check(self) -> dict[str, Any] | None:
        newest = self.monitor.recent_checks(1)
        return check_entry(newest[0], with_columns=True) if newest else None

    def retrains(self, limit: int, order: Order = "newest") -> list[dict[str, Any]]:
        checks_desc = self.monitor.recent_checks(HISTORY_SCAN)
        entries = [
            retrain_entry(r, checks_desc, self.drift_onset)
            for r in self.monitor.recent_retrains(limit)
        ]
        return _ordered(entries, order)

    def drift_onset(self, trigger: dict[str, Any]) -> float | None:
        """When the drift a check saw began: its version's first row logged after the
        drift's onset (monitoring.state_store), or None when no row is left."""
        version = trigger["model_version"]
        onset = self.monitor.drift_onset_log_id(trigger["model_name"], version, trigger["id"])
        query = sa.select(sa.func.min(predictions.c.created_at)).where(
            predictions.c.model_version == version, predictions.c.id > onset
        )
        with self.log.engine.connect() as connection:
            return connection.execute(query).scalar()

    def logged_per_minute(self, minutes: int, now: float | None = None) -> list[dict[str, Any]]:
        """Logged predictions per minute and model version, oldest first (survives restarts)."""
        since = (now or time.time()) - minutes * SECONDS_PER_MINUTE
        minute = sa.cast(predictions.c.created_at / SECONDS_PER_MINUTE, sa.Integer)
        query = (
            sa.select(minute.label("minute"), predictions.c.model_version, sa.func.count())
            .where(predictions.c.created_at >= since)
            .group_by(minute, predictions.c.model_version)
            .order_by(minute)
        )
        with self.log.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            {"minute_start": int(m) * SECONDS_PER_MINUTE, "model_version": v, "predictions": n}
            for m, v, n in rows
        ]

    def last_logged_features(self) -> dict[str, Any] | None:
        """The newest logged request's features: the prediction form's starting values."""
        query = sa.select(predictions.c.features).order_by(predictions.c.id.desc()).limit(1)
        with self.log.engine.connect() as connection:
            raw = connection.execute(query).scalar()
        return None if raw is None else json.loads(raw)
