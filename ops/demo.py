"""The demo driver: the whole loop on the embedded data, driven from outside like a user would.

`make demo` and `benchmarks/loop.py` run it against the real service and monitor: train,
deploy, serve, replay normal traffic (no retrain expected), then drifted traffic with its
ground truth as feedback until a new model serves, and summarise what happened.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from monitoring.state_store import MonitorStore
from ops.monitor_service import read_heartbeat
from ops.replay import replay
from ops.stacks import use_stack_tracking
from ui.records import decision_label
from zenloop.admin_token import resolve_admin_token
from zenloop.config import DEFAULT_MODEL_NAME
from zenloop.data.generator import CLASSIFICATION_TARGET, REGRESSION_TARGET, generate_orders
from zenloop.deployment import request_rows
from zenloop.metrics import primary_metric, score
from zenloop.tracking import load_bundle
from zenloop.waiting import poll_until

logger = logging.getLogger(__name__)

CHECK_WAIT_S = 120.0
SAMPLE_ROWS = 5
SAMPLE_SEED = 2026
REQUEST_TIMEOUT_S = 10.0
TIMELINE_CHECKS = 50
TIMELINE_RUNS = 20
LATER_ROWS = 2_000  # drifted orders after the swap: both versions are scored on them


@dataclass
class LoopSummary:
    version_before: str
    version_after: str
    normal_rows: int
    normal_decision: str
    drift_rows: int
    onset_to_serving_s: float | None
    rmse_before: float
    rmse_after: float
    trigger: dict | None
    outcome: dict | None
    timeline: list[tuple[float, str]] = field(default_factory=list)  # seconds after onset
    onset_at: float | None = None  # when the first drifted row was sent (epoch seconds)
    notes: list[str] = field(default_factory=list)

    @property
    def error_ratio(self) -> float:
        return self.rmse_after / self.rmse_before if self.rmse_before else float("nan")


def _served(url: str) -> str:
    return httpx.get(f"{url}/model-info", timeout=REQUEST_TIMEOUT_S).json()["version"]


def _served_name(url: str) -> str:
    return httpx.get(f"{url}/model-info", timeout=REQUEST_TIMEOUT_S).json()["name"]


def _wait_for_check(model_name: str, after_checks: int, timeout: float) -> dict | None:
    """The decision of the model's monitor's next check, or None when none came in time."""
    beat = poll_until(
        lambda: (b := read_heartbeat(model_name) or {}).get("checks", 0) > after_checks and b,
        timeout,
    )
    return beat.get("last_decision") if beat else None


def sample_requests(url: str) -> list[str]:
    """A few real requests against the running service, as a client sees them."""
    orders = generate_orders(SAMPLE_ROWS, seed=SAMPLE_SEED)
    rows = request_rows(orders.drop(columns=[REGRESSION_TARGET, CLASSIFICATION_TARGET]))
    lines = []
    for row, truth in zip(rows[:3], orders[REGRESSION_TARGET], strict=False):
        answer = httpx.post(f"{url}/predict", json=row, timeout=REQUEST_TIMEOUT_S).json()
        lines.append(
            f"POST /predict {row['category']}/{row['sub_category']} x{row['quantity']}"
            f" -> {json.dumps(answer)}  (true total {truth:.2f})"
        )
    batch = httpx.post(
        f"{url}/predict_batch", json={"rows": rows}, timeout=REQUEST_TIMEOUT_S
    ).json()
    values = [round(p["prediction"], 2) for p in batch["predictions"]]
    lines.append(f"POST /predict_batch ({len(rows)} rows) -> v{batch['model_version']}: {values}")
    return lines


def run_loop(
    url: str,
    scenario: str,
    log_database_url: str | None,
    normal_rows: int = 1_500,
    drift_rows: int = 40_000,
    max_seconds: float = 300.0,
    pause_s: float = 0.2,
    seed: int = 7,
    model_name: str = DEFAULT_MODEL_NAME,
) -> LoopSummary:
    """Replay normal traffic (expect no retrain), then drift until the served version changes."""
    token = resolve_admin_token(None)
    before = _served(url)
    drop = [CLASSIFICATION_TARGET]
    checks = (read_heartbeat(model_name) or {}).get("checks", 0)
    normal = generate_orders(normal_rows, seed=seed).drop(columns=drop)
    replay(url, normal, REGRESSION_TARGET, token)
    decision = _wait_for_check(model_name, checks, CHECK_WAIT_S)
    normal_decision = decision["reason"] if decision else "no check finished in time"
    logger.info("normal traffic: %s", normal_decision)

    drifted = generate_orders(drift_rows, seed=seed + 1, scenario=scenario).drop(columns=drop)
    onset = time.monotonic()
    onset_at = time.time()
    during = replay(
        url,
        drifted,
        REGRESSION_TARGET,
        token,
        pause_s=pause_s,
        max_seconds=max_seconds,
        until=lambda version: version != before,
    )
    after_version = _served(url)
    swapped = after_version != before
    onset_to_serving = time.monotonic() - onset if swapped else None
    fresh = generate_orders(LATER_ROWS, seed=seed + 2, scenario=scenario).drop(columns=drop)
    after = replay(url, fresh, REGRESSION_TARGET, None)
    # the version before, offline on the very rows the new one served: one comparison
    use_stack_tracking()
    replaced = load_bundle(f"models:/{_served_name(url)}/{before}")
    predicted, _ = replaced.predict_raw(fresh.drop(columns=[REGRESSION_TARGET]))
    truth = fresh[REGRESSION_TARGET].to_numpy(float)
    store = MonitorStore(log_database_url)
    trigger = store.last_trigger()
    outcomes = store.recent_retrains(1)
    return LoopSummary(
        version_before=before,
        version_after=after_version,
        normal_rows=normal_rows,
        normal_decision=normal_decision,
        drift_rows=during.sent,
        onset_to_serving_s=onset_to_serving,
        rmse_before=score(primary_metric("regression"), truth, predicted, None),
        rmse_after=after.error(after_version),
        trigger=trigger["report"] if trigger else None,
        outcome=outcomes[0] if outcomes else None,
        timeline=timeline(store, url, onset_at),
        onset_at=onset_at,
        notes=[] if swapped else [f"no new version served within {max_seconds:.0f}s"],
    )


def _epoch(moment: datetime) -> float:
    """ZenML's run times are UTC, without a time zone."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def timeline(store: MonitorStore, url: str, onset_at: float) -> list[tuple[float, str]]:
    """Where the time from drift onset to the new version serving went, from the records.

    The monitor's checks and retrainings (its history), the retraining's training and
    deployment runs (ZenML), and the service's own load time.
    """
    from zenml.client import Client

    events = [(0.0, "first drifted row sent")]
    for check in reversed(store.recent_checks(TIMELINE_CHECKS)):
        if check["checked_at"] >= onset_at:
            # as the page labels it: a check the policy did not count says so
            verdict = "RETRAIN" if check["retrain"] else decision_label(check)
            events.append((check["checked_at"] - onset_at, f"check: {verdict} ({check['reason']})"))
    for retrain in store.recent_retrains(TIMELINE_CHECKS):
        if retrain["started_at"] >= onset_at:
            events.append((retrain["started_at"] - onset_at, "retraining started"))
            if retrain["finished_at"]:
                outcome = f"retraining recorded: {retrain['summary']}"
                events.append((retrain["finished_at"] - onset_at, outcome))
    runs = Client().list_pipeline_runs(sort_by="desc:created", size=TIMELINE_RUNS, hydrate=True)
    for run in runs.items:
        if run.start_time is None or run.end_time is None:
            continue
        start, end = _epoch(run.start_time), _epoch(run.end_time)
        if start >= onset_at:
            events.append((start - onset_at, f"{run.name} started"))
            events.append((end - onset_at, f"{run.name} finished ({run.status})"))
    info = httpx.get(f"{url}/model-info", timeout=REQUEST_TIMEOUT_S).json()
    loaded_at = datetime.fromisoformat(info["loaded_at"]).timestamp()
    if loaded_at >= onset_at:
        events.append((loaded_at - onset_at, f"service swapped to v{info['version']}"))
    return sorted(events)


def format_summary(summary: LoopSummary) -> str:
    lines = [
        f"versions: v{summary.version_before} -> v{summary.version_after}",
        f"normal traffic ({summary.normal_rows} rows): {summary.normal_decision}",
    ]
    if summary.trigger:
        trigger = summary.trigger
        lines.append(
            f"drift that triggered the retrain: {trigger['drifted_count']}/"
            f"{len(trigger['columns'])} columns ({trigger['drifted_share']:.0%});"
            f" {trigger['reason']}"
        )
        for column in trigger["columns"] + (
            [trigger["prediction"]] if trigger["prediction"] else []
        ):
            verdict = "DRIFT" if column["drifted"] else "ok"
            lines.append(
                f"    {column['column']:22s} {column['method']:32s} {column['score']:8.4f}"
                f" (threshold {column['threshold']}) {verdict}"
            )
    if summary.outcome:
        lines.append(f"retrain outcome: {summary.outcome['summary']}")
    lines.append(
        f"RMSE on the same {LATER_ROWS:,} later drifted orders: v{summary.version_before}"
        f" {summary.rmse_before:.2f} (scored offline) -> v{summary.version_after}"
        f" {summary.rmse_after:.2f} (served): ratio {summary.error_ratio:.2f}"
    )
    if summary.timeline:
        lines.append("timeline (seconds after the first drifted row):")
        lines += [f"  {at:7.1f}  {what}" for at, what in summary.timeline]
    onset = summary.onset_to_serving_s
    lines.append(
        "drift onset -> new version serving: "
        + (f"{onset:.1f} s ({summary.drift_rows} drifted rows sent)" if onset else "did not happen")
    )
    return "\n".join(lines + summary.notes)
