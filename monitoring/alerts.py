"""What a person should be told as it happens: drift confirmed, a retraining that failed,
a promotion, a rollback, a champion that fell behind the naive forecast.

Read from the monitor's own records (checks and retrainings), newest first, against a
cursor of what was already told, so each happening is told once, whichever monitor
process (active or taken over) tells it. Plain Python: the stack's alerter sends them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from monitoring.drift_report import PerformanceCheck


class AlertEvent(StrEnum):
    DRIFT_CONFIRMED = "drift_confirmed"
    RETRAINING_FAILED = "retraining_failed"
    PROMOTION = "promotion"
    ROLLBACK = "rollback"
    BEHIND_BASELINE = "behind_baseline"


class Alert(BaseModel):
    event: AlertEvent
    model: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class AlertCursor(BaseModel):
    """What was already told: the newest check seen, the retrainings whose end and
    rollback were told, and whether the champion was behind the naive forecast."""

    last_check_id: int = 0
    ended: set[int] = Field(default_factory=set)
    rolled_back: set[int] = Field(default_factory=set)
    behind_baseline: bool = False

    @classmethod
    def from_now(cls, checks: list[dict], retrains: list[dict]) -> AlertCursor:
        """A cursor that tells nothing of the past: a monitor (re)starting is no news."""
        return cls(
            last_check_id=max((c["id"] for c in checks), default=0),
            ended={r["id"] for r in retrains if r["finished_at"]},
            rolled_back={r["id"] for r in retrains if r["rolled_back_at"]},
            behind_baseline=bool(checks and _behind(checks[0])),
        )


def _behind(check: dict) -> bool:
    performance = check["report"].get("performance")
    return bool(performance and performance.get("behind_baseline"))


def new_alerts(
    model: str, checks: list[dict], retrains: list[dict], cursor: AlertCursor
) -> list[Alert]:
    """The alerts in `checks` and `retrains` (newest first) not yet told; `cursor` moves on."""
    found: list[Alert] = []
    fresh = sorted((c for c in checks if c["id"] > cursor.last_check_id), key=lambda c: c["id"])
    for check in fresh:
        if check["retrain"]:
            what = f"drift confirmed, retraining ({check['reason']})"
            found.append(_check_alert(model, check, AlertEvent.DRIFT_CONFIRMED, what))
        behind = _behind(check)
        if behind and not cursor.behind_baseline:
            performance = PerformanceCheck.model_validate(check["report"]["performance"])
            what = performance.baseline_alert()
            found.append(_check_alert(model, check, AlertEvent.BEHIND_BASELINE, what))
        cursor.behind_baseline = behind
        cursor.last_check_id = check["id"]
    for retrain in sorted(retrains, key=lambda r: r["id"]):
        if retrain["finished_at"] and retrain["id"] not in cursor.ended:
            cursor.ended.add(retrain["id"])
            if retrain["failed"]:
                found.append(_retrain_alert(model, retrain, AlertEvent.RETRAINING_FAILED))
            elif retrain["promoted"] and retrain["deployed_version"]:
                found.append(_retrain_alert(model, retrain, AlertEvent.PROMOTION))
        if retrain["rolled_back_at"] and retrain["id"] not in cursor.rolled_back:
            cursor.rolled_back.add(retrain["id"])
            found.append(_retrain_alert(model, retrain, AlertEvent.ROLLBACK))
    return found


def _check_alert(model: str, check: dict, event: AlertEvent, what: str) -> Alert:
    """An alert about a check of the version it watched."""
    version = check["report"].get("model_version")
    return Alert(
        event=event,
        model=model,
        message=f"{model} v{version}: {what}",
        details={"check_id": check["id"], "version": version},
    )


def _retrain_alert(model: str, retrain: dict, event: AlertEvent) -> Alert:
    messages = {
        AlertEvent.RETRAINING_FAILED: f"{model}: retraining {retrain['id']} failed, the "
        f"champion stays ({retrain['summary']})",
        AlertEvent.PROMOTION: f"{model}: v{retrain['deployed_version']} promoted and serving, "
        f"replacing v{retrain.get('replaced_version')} ({retrain['summary']})",
        AlertEvent.ROLLBACK: f"{model}: v{retrain['deployed_version']} rolled back "
        f"({retrain.get('review')})",
    }
    return Alert(
        event=event,
        model=model,
        message=messages[event],
        details={
            "retrain_id": retrain["id"],
            "version": retrain["deployed_version"],
            "replaced_version": retrain.get("replaced_version"),
        },
    )
