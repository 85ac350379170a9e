"""Monitoring steps: window -> drift check -> decision -> (maybe) a retraining plan.

The steps start nothing and keep nothing on the machine they run on: the window comes
from the prediction log's database, the champion from the run's model version, and the
policy state, the retrain lease and the check history go back to that database. The run
is tagged with what it found, so the dashboard's run list reads like a log.
"""

import logging
import time
from typing import Annotated

import pandas as pd
from zenml import add_tags, get_step_context, log_metadata, step

import materializers  # noqa: F401
from monitoring.champion import ChampionInfo
from monitoring.drift import check_drift
from monitoring.drift_report import DriftCheck
from monitoring.log_store import PredictionLogStore
from monitoring.policy import Decision, decide
from monitoring.retraining import RetrainPlan, build_retraining_data, recent_labelled
from monitoring.review import PromotionReview, Verdict, review
from monitoring.scoring import labelled_rows
from monitoring.state_store import LaterScores, Lease, MonitorStore
from steps.hooks import record_failure
from steps.portability import reachable_log_url
from steps.registry import linked_version
from zenloop.config import ColumnRole, MonitorConfig
from zenloop.history_plots import DriftHistory, build_drift_history
from zenloop.tracking import load_bundle

logger = logging.getLogger(__name__)

LOG_ID_COLUMN = "log_id"
TAG_NO_DRIFT, TAG_DRIFT, TAG_RETRAIN = "no-drift", "drift", "retrain"
HISTORY_CHECKS = 200  # checks drawn in the drift-history plot


@step(enable_cache=False, on_failure=record_failure)
def load_window(
    monitor: MonitorConfig,
) -> tuple[
    Annotated[pd.DataFrame, "window"],
    Annotated[pd.DataFrame, "reference"],
    Annotated[ChampionInfo, "champion"],
]:
    """The champion's latest logged traffic and its reference sample (never cached)."""
    version = linked_version(monitor.model_name, monitor.alias)
    bundle = load_bundle(f"models:/{version.name}/{version.registry_version}")
    champion = ChampionInfo(
        name=version.name,
        version=version.registry_version,
        zenml_model_version=version.zenml_version_id,
        feature_schema=bundle.schema,
        test_metrics=bundle.metrics["test"],
    )
    store = _prediction_log(monitor)
    if monitor.window.last_rows is not None:
        window = store.last_rows(monitor.window.last_rows, champion.version)
    else:
        now = time.time()
        window = store.rows_between(now - monitor.window.seconds, now, champion.version)
    log_metadata({"window_rows": len(window), "model_version": champion.version})
    return window, version.artifact("reference_data"), champion


@step(enable_cache=False, on_failure=record_failure)
def check_window_drift(
    window: pd.DataFrame, reference: pd.DataFrame, champion: ChampionInfo, monitor: MonitorConfig
) -> Annotated[DriftCheck, "drift_check"]:
    check = check_drift(
        champion.name,
        champion.version,
        window,
        reference,
        champion.feature_schema,
        champion.test_metrics,
        monitor.drift,
    )
    report = check.report
    log_metadata(
        {"drift": report.drift, "drifted_share": report.drifted_share, "reason": report.reason}
    )
    return check


def _prediction_log(monitor: MonitorConfig) -> PredictionLogStore:
    return PredictionLogStore(reachable_log_url(monitor.log_database_url))


def _awaits_verdict(review: PromotionReview, monitor: MonitorConfig) -> bool:
    """A promotion whose review can still roll it back is judged before it is replaced."""
    return monitor.rollback.enabled and review.verdict == Verdict.WAITING


@step(enable_cache=False, on_failure=record_failure)
def decide_retraining(
    check: DriftCheck, window: pd.DataFrame, review: PromotionReview, monitor: MonitorConfig
) -> Annotated[Decision, "decision"]:
    """Every decision, retrain or not, is recorded with its reason, and the run is tagged."""
    store = MonitorStore(reachable_log_url(monitor.log_database_url))
    report = check.report
    state = store.load_state(report.model_name)
    ids = window[LOG_ID_COLUMN] if LOG_ID_COLUMN in window else pd.Series(dtype=int)
    new_rows = int((ids > state.last_log_id).sum())
    last_log_id = int(ids.max()) if len(ids) else state.last_log_id
    lease = Lease(store, monitor.policy.lease_timeout_s)
    onset = store.drift_onset_log_id(report.model_name, report.model_version)
    log = _prediction_log(monitor)
    # counted, not read; up to the window's newest row, as the retraining's plan reads them
    labelled = log.count_labelled(after_id=onset, until_id=last_log_id)
    required = 0 if monitor.retrain.fallback is not None else monitor.retrain.min_labelled_rows
    retrained_at = store.retrained_at(report.model_name, report.model_version)
    cooled_from = store.cooldown_log_id(report.model_name, report.model_version)
    since_retrain = None if cooled_from is None else log.count_labelled(after_id=cooled_from)
    decision = decide(
        report,
        new_rows,
        last_log_id,
        state,
        lease,
        monitor.policy,
        labelled,
        required,
        retrained_at,
        rolled_back=review.reason if review.verdict == Verdict.ROLLBACK else None,
        labelled_since_retrain=since_retrain,
        under_review=review.reason if _awaits_verdict(review, monitor) else None,
    )
    try:
        store.save_state(report.model_name, state)
        decision.check_id = store.record_check(
            report.model_dump(mode="json"),
            decision.retrain,
            decision.reason,
            last_log_id,
            new_rows=decision.new_rows,
            counted=decision.counted,
        )
        drifted = report.drift and decision.counted
        tag = TAG_RETRAIN if decision.retrain else TAG_DRIFT if drifted else TAG_NO_DRIFT
        add_tags(tags=[tag], run=get_step_context().pipeline_run.id)
        log_metadata({"decision": decision.model_dump(mode="json")})
    except Exception:
        lease.release()  # taken for a retraining that this failure leaves unplanned
        raise
    logger.info("monitor decision: %s", decision.reason)
    return decision


@step(enable_cache=False, on_failure=record_failure)
def review_promotion(
    champion: ChampionInfo, monitor: MonitorConfig
) -> Annotated[PromotionReview, "promotion_review"]:
    """The champion a retraining put in place, and the version it replaced, on the same
    labelled rows the champion served since: the replaced one scored offline from the log.
    The verdict is recorded; a rollback is carried out by the monitor service."""
    store = MonitorStore(reachable_log_url(monitor.log_database_url))
    promotion = store.promotion_of(champion.name, champion.version)
    if promotion is None:
        return PromotionReview(
            model_name=champion.name,
            version=champion.version,
            reason=f"v{champion.version} was not put in place by a retraining: nothing to review",
        )
    log = _prediction_log(monitor)
    decided = (promotion.get("review") or "").startswith(Verdict.KEPT.value)
    # the verdict is made on the first `after_rows` labelled rows after the promotion,
    # whenever the checks come; once made, the figures follow the newest rows
    rows = (
        log.labelled_rows_of(champion.version, monitor.rollback.max_rows)
        if decided
        else log.labelled_rows_of(champion.version, monitor.rollback.after_rows, first=True)
    )
    labelled = labelled_rows(rows, champion.feature_schema)
    replaced = load_bundle(f"models:/{champion.name}/{promotion['replaced_version']}")
    outputs = replaced.predict_raw(labelled.rows) if len(labelled) else (None, None)
    result = review(
        champion.name,
        champion.version,
        promotion,
        labelled,
        outputs,
        champion.feature_schema,
        monitor.rollback,
        monitor.drift,
    )
    if result.after is not None and result.before is not None:
        store.record_later_scores(
            promotion["id"],
            LaterScores(
                rows=result.rows,
                before=result.before,
                after=result.after,
                baseline=result.baseline,
                review=result.reason,
            ),
        )
    log_metadata({"promotion_review": result.model_dump(mode="json")})
    logger.info("review of v%s: %s", champion.version, result.reason)
    return result


@step(enable_cache=False, on_failure=record_failure)
def plot_drift_history(
    decision: Decision, monitor: MonitorConfig
) -> Annotated[DriftHistory, "drift_history"]:
    """The stored checks and retrainings as a plot; after the decision, so it ends with
    this run's own check."""
    store = MonitorStore(reachable_log_url(monitor.log_database_url))
    checks = store.recent_checks(HISTORY_CHECKS, monitor.model_name)
    retrains = store.recent_retrains(HISTORY_CHECKS, monitor.model_name)
    return build_drift_history(monitor.model_name, checks, retrains)


CHAMPION_SPLITS = ("train", "validation", "test")  # the champion's rows, oldest first


@step(enable_cache=False, on_failure=record_failure)
def plan_retraining(
    decision: Decision, champion: ChampionInfo, window: pd.DataFrame, monitor: MonitorConfig
) -> tuple[
    Annotated[RetrainPlan, "retrain_plan"],
    Annotated[pd.DataFrame, "retrain_data"],
]:
    """What a retraining learns from, as an artifact in time order; the lease stays taken
    for it. The champion's latest rows come first, then the labelled traffic since the
    drift began, in log order: the training run holds the newest of them out."""
    empty = window.head(0)  # no rows, but columns: ZenML describes it for the dashboard
    base = {"model_name": champion.name, "check_id": decision.check_id}
    if not decision.retrain:
        return RetrainPlan(ready=False, reason=decision.reason, **base), empty
    store = MonitorStore(reachable_log_url(monitor.log_database_url))
    lease = Lease(store, monitor.policy.lease_timeout_s, owner=decision.lease_owner)
    try:
        schema = champion.feature_schema
        # the traffic since the drift began (after the last clean window)
        onset = store.drift_onset_log_id(champion.name, champion.version)
        # up to the checked window's last row: the next retraining starts after it
        until = int(window[LOG_ID_COLUMN].max()) if len(window) else onset
        logged = _prediction_log(monitor).labelled_rows(after_id=onset, until_id=until)
        recent, source = recent_labelled(logged, schema, monitor.retrain)
        if len(recent) < monitor.retrain.min_labelled_rows:
            lease.release()
            reason = f"drift, but no data to retrain on: {source}"
            return RetrainPlan(ready=False, reason=reason, **base), empty
        version = linked_version(champion.name, monitor.alias, champion.version)
        champion_rows = pd.concat(
            [version.artifact(split) for split in CHAMPION_SPLITS], ignore_index=True
        )
        data, history, labelled, validation, holdout = build_retraining_data(
            champion_rows, recent, schema, monitor.retrain
        )
        if labelled - validation - holdout < 1:  # every feedback label failed to read
            lease.release()
            reason = f"drift, but too few valid labels to retrain on among {len(recent)} rows"
            return RetrainPlan(ready=False, reason=reason, **base), empty
    except Exception:
        lease.release()
        raise
    plan = RetrainPlan(
        ready=True,
        reason=decision.reason,
        target=schema.target,
        task=schema.task,
        lease_owner=decision.lease_owner,
        recent_source=source,
        ignored_columns=schema.names(ColumnRole.IGNORE),
        time_column=schema.time_column,
        history_rows=history,
        labelled_rows=labelled,
        validation_rows=validation,
        holdout_rows=holdout,
        **base,
    )
    log_metadata({"retrain_plan": plan.model_dump(mode="json")})
    return plan, data
