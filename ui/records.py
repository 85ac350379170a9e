"""The loop's history as data: checks, triggers and retrainings from the monitor's records.

Everything here reads the prediction log's database (monitoring.state_store and the log
table), so it is the same after a restart of any process. A retraining is joined with
the check that triggered it, the run of drifted checks before that (the drift's onset as
the monitor saw it), and the first labelled check after its version went live, which
gives the before/after error on labelled traffic.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

import sqlalchemy as sa

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
    }
    if with_columns:
        entry["columns"] = report.get("columns", []) + (
            [report["prediction"]] if report.get("prediction") else []
        )
    return entry


def retrain_outcome(retrain: dict[str, Any]) -> str:
    if retrain["finished_at"] is None:
        return "running"
    if retrain["promoted"] and retrain["deployed_version"]:
        return "promoted and deployed"
    if retrain["promoted"]:
        return "promoted, not deployed"
    if (retrain["summary"] or "").startswith("retraining failed"):
        return "failed, champion stays"
    return "champion stays"


def _onset(trigger: dict[str, Any], checks_desc: list[dict[str, Any]]) -> dict[str, Any]:
    """The first check of the unbroken run of drifted checks that ends at the trigger."""
    onset = trigger
    started = False
    for check in checks_desc:
        if check["id"] == trigger["id"]:
            started = True
            continue
        if not started:
            continue
        if check["model_version"] != trigger["model_version"] or not check["drift"]:
            break
        onset = check
    return onset


def _first_labelled_after(
    version: str, after: float, checks_desc: list[dict[str, Any]]
) -> dict[str, Any] | None:
    for check in reversed(checks_desc):  # oldest first
        performance = check["report"].get("performance")
        if check["checked_at"] >= after and check["model_version"] == version and performance:
            return check
    return None


def retrain_entry(retrain: dict[str, Any], checks_desc: list[dict[str, Any]]) -> dict[str, Any]:
    """One retraining with its trigger, outcome, onset-to-serving time and errors."""
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
        "error_metric": None,
        "error_before": None,
        "error_after": None,
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
    onset = _onset(trigger, checks_desc)
    entry["onset_at"] = onset["checked_at"]
    if retrain["deployed_version"] and retrain["finished_at"]:
        entry["onset_to_serving_s"] = retrain["finished_at"] - onset["checked_at"]
    before = trigger["report"].get("performance")
    if before:
        entry["error_metric"] = before["metric"]
        entry["error_before"] = before["window_value"]
    if retrain["deployed_version"] and retrain["finished_at"]:
        after = _first_labelled_after(
            retrain["deployed_version"], retrain["finished_at"], checks_desc
        )
        if after is not None:
            performance = after["report"]["performance"]
            entry["error_metric"] = entry["error_metric"] or performance["metric"]
            entry["error_after"] = performance["window_value"]
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
        entries = [retrain_entry(r, checks_desc) for r in self.monitor.recent_retrains(limit)]
        return _ordered(entries, order)

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
