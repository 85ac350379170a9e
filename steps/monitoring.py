"""Monitoring steps: window -> drift check -> decision -> (maybe) a retraining plan.

The steps start nothing: the monitor service launches the plan.
"""

import logging
import time
from typing import Annotated

import pandas as pd
from mlflow.tracking import MlflowClient
from zenml import log_metadata, step

import materializers  # noqa: F401
from monitoring.champion import ChampionInfo
from monitoring.drift import DriftCheck, check_drift
from monitoring.log_store import PredictionLogStore
from monitoring.policy import (
    LAST_CHECK_FILE,
    LAST_TRIGGER_FILE,
    Decision,
    MonitorState,
    RetrainLock,
    decide,
    monitor_dir,
)
from monitoring.retraining import RetrainPlan, build_training_sets, recent_labelled, write_plan
from steps.registry import configure_mlflow, version_artifact
from zenloop.config import MonitorConfig
from zenloop.tracking import ZENML_VERSION_TAG, load_bundle

logger = logging.getLogger(__name__)


def _champion_artifact(champion: ChampionInfo, name: str) -> pd.DataFrame:
    return version_artifact(champion.name, champion.zenml_model_version, name)


@step(enable_cache=False)
def load_window(
    monitor: MonitorConfig,
) -> tuple[
    Annotated[pd.DataFrame, "window"],
    Annotated[pd.DataFrame, "reference"],
    Annotated[ChampionInfo, "champion"],
]:
    """The champion's latest logged traffic and its reference sample (never cached)."""
    configure_mlflow()
    registered = MlflowClient().get_model_version_by_alias(monitor.model_name, monitor.alias)
    version = str(registered.version)
    bundle = load_bundle(f"models:/{monitor.model_name}/{version}")
    champion = ChampionInfo(
        name=monitor.model_name,
        version=version,
        zenml_model_version=registered.tags[ZENML_VERSION_TAG],
        feature_schema=bundle.schema,
        test_metrics=bundle.metrics["test"],
    )
    store = PredictionLogStore(monitor.log_database_url)
    if monitor.window.last_rows is not None:
        window = store.last_rows(monitor.window.last_rows, version)
    else:
        now = time.time()
        window = store.rows_between(now - monitor.window.seconds, now, version)
    reference = _champion_artifact(champion, "reference_data")
    log_metadata({"window_rows": len(window), "model_version": version})
    return window, reference, champion


@step(enable_cache=False)
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


@step(enable_cache=False)
def decide_retraining(check: DriftCheck, monitor: MonitorConfig) -> Annotated[Decision, "decision"]:
    """Every decision, retrain or not, is recorded with its reason."""
    state = MonitorState.load()
    lock = RetrainLock(monitor.policy.stale_lock_s)
    decision = decide(check.report, state, lock, monitor.policy)
    state.save()
    (monitor_dir() / LAST_CHECK_FILE).write_text(check.report.model_dump_json(indent=2))
    if decision.retrain:
        (monitor_dir() / LAST_TRIGGER_FILE).write_text(check.report.model_dump_json(indent=2))
    logger.info("monitor decision: %s", decision.reason)
    log_metadata({"decision": decision.model_dump(mode="json")})
    return decision


@step(enable_cache=False)
def plan_retraining(
    decision: Decision, champion: ChampionInfo, window: pd.DataFrame, monitor: MonitorConfig
) -> Annotated[RetrainPlan, "retrain_plan"]:
    """The data and run configs of a retraining; the retrain lock stays taken for it."""
    if not decision.retrain:
        return RetrainPlan(reason=decision.reason)
    lock = RetrainLock(monitor.policy.stale_lock_s)
    try:
        schema = champion.feature_schema
        store = PredictionLogStore(monitor.log_database_url)
        logged = store.labelled_rows(since=(window["logged_at"].min() if len(window) else 0.0))
        recent, source = recent_labelled(logged, schema, monitor.retrain)
        if len(recent) < monitor.retrain.min_labelled_rows:
            lock.release()
            return RetrainPlan(reason=f"drift, but no data to retrain on: {source}")
        champion_train = _champion_artifact(champion, "train")
        train, holdout = build_training_sets(
            champion_train, recent, schema, monitor.retrain, seed=0
        )
        plan = write_plan(
            train, holdout, schema, monitor.retrain, champion.name, monitor.policy.stale_lock_s
        )
    except Exception:
        lock.release()
        raise
    retrain_plan = RetrainPlan(
        reason=decision.reason,
        plan=str(plan),
        recent_source=source,
        training_rows=len(train),
        recent_rows=len(holdout),
    )
    log_metadata({"retrain_plan": retrain_plan.model_dump(mode="json")})
    return retrain_plan
