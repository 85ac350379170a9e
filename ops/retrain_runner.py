"""The retrain runner: a process of its own that trains on a plan and deploys a winner.

The monitor service launches it for a monitoring run whose plan is ready. It trains on
the plan's data artifacts, deploys the new model when promoted, keeps the retrain lease
renewed while it works, and always records the outcome and releases the lease, even when
a run fails: then the champion keeps serving and the failing step's own error is kept.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml
from mlflow.tracking import MlflowClient
from zenml.client import Client
from zenml.enums import ModelStages

from monitoring.log_store import PredictionLogStore
from monitoring.policy import Decision
from monitoring.retraining import RetrainPlan
from monitoring.review import PromotionReview
from monitoring.state_store import Lease, MonitorStore, RetrainErrors
from ops import runs
from ops.leases import LeaseKeeper
from ops.processes import spawn, zenloop_command
from ops.stacks import use_stack_tracking
from ops.warm_runner import Job, WarmRunner
from zenloop.config import (
    ColumnRole,
    MonitorConfig,
    RetrainConfig,
    default_candidates,
    load_monitor_config,
    read_run_config,
)
from zenloop.metrics import metric_named
from zenloop.models import FAMILIES
from zenloop.paths import model_dir, project_path
from zenloop.promotion import TEST_SET, PromotionDecision
from zenloop.tracking import ZENML_VERSION_TAG, apply_aliases

logger = logging.getLogger(__name__)

RETRAINS_DIR = "retrains"
PLAN_STEP = "plan_retraining"
DECIDE_STEP = "decide_retraining"
BOARD_ARTIFACT = "candidate_board"
# a retraining's run is named after the check that asked for it: the run list reads like a log
RUN_PREFIX = "retrain-after-"


def retrains_dir(model_name: str) -> Path:
    """The model's retrainings' logs and training data, in its own folder."""
    return model_dir(model_name) / RETRAINS_DIR


def launch(monitoring_run_id: str, monitor_config: Path, warm: WarmRunner | None = None) -> int:
    """Hand a monitoring run's plan to the warm runner, or start `zenloop retrain` detached
    when there is none ready; either way the lease passes to the runner."""
    if warm is not None and (pid := warm.hand(Job(monitoring_run_id, monitor_config))):
        return pid
    log = retrains_dir(load_monitor_config(monitor_config).model_name) / f"{monitoring_run_id}.log"
    pid = spawn(
        zenloop_command("retrain", "--run", monitoring_run_id, "-c", str(monitor_config)), log
    )
    logger.info("retraining started: pid %d, log %s", pid, log)
    return pid


def champion_leaders(model_name: str, count: int, with_trend: bool = True) -> dict[str, dict]:
    """The candidates that ranked best (and passed) on the champion's board, with the
    params they were trained with (their search's pick included), best first; and, with
    `with_trend`, the best one that can follow a trend past its training rows (a linear
    or trend candidate), so a retraining is never trees only.

    Empty when the board cannot be read (e.g. a champion registered outside ZenML): then
    every candidate is retrained, as without the option.
    """
    try:
        champion = Client().get_model_version(model_name, ModelStages.PRODUCTION)
        board = champion.get_artifact(BOARD_ARTIFACT).load()
    except Exception as exc:  # any failure here only costs speed, never the retraining
        logger.warning("the champion's candidate board is unreadable (%s): all candidates", exc)
        return {}
    passed = [r for r in board.ranked() if r.passed]
    leaders = passed[:count]
    trend = next((r for r in passed if FAMILIES[r.family].extrapolates), None)
    if with_trend and trend is not None and trend not in leaders:
        leaders.append(trend)
    return {r.name: r.params for r in leaders}


def _plain(value: Any) -> Any:
    return value.item()  # a numpy scalar; anything else fails as json.dumps would


def narrow_candidates(params: dict, leaders: dict[str, dict]) -> None:
    """Disable the configured candidates that are not leaders (all stay when none match);
    a leader that searched keeps the settings its search picked instead of searching again."""
    candidates = params.get("candidates") or [
        c.model_dump(mode="json", exclude_defaults=True) for c in default_candidates()
    ]
    if not any(c.get("name") in leaders for c in candidates if c.get("enabled", True)):
        return
    for candidate in candidates:
        name = candidate.get("name")
        if name not in leaders:
            candidate["enabled"] = False
        elif candidate.pop("search", None) is not None:
            # plain values for the YAML run config (a sampled search picks numpy scalars)
            candidate["params"] = json.loads(json.dumps(leaders[name], default=_plain))
    params["candidates"] = candidates


def training_config(
    plan: RetrainPlan,
    base: Path,
    data_id: str,
    folder: Path,
    retrain: RetrainConfig,
) -> Path:
    """The configured training run, pointed at the plan's data artifact, leaders only.

    The data is in time order, so the split keeps it: the newest labelled rows are the
    test rows (the candidate, the champion and the naive baselines are judged on them),
    the ones before them validate, and the history backtest's recent window is the
    labelled traffic the new model learns from.
    """
    run_config = read_run_config(base)
    run_config.setdefault("model", {})["name"] = plan.model_name
    params = run_config.setdefault("parameters", {}).setdefault("config", {})
    if retrain.leading_candidates is not None:
        leaders = champion_leaders(
            plan.model_name, retrain.leading_candidates, retrain.with_trend_candidate
        )
        narrow_candidates(params, leaders)
        logger.info("retraining the champion board's leaders: %s", list(leaders) or "all")
    roles = params.setdefault("profile", {}).setdefault("column_roles", {})
    for name in plan.ignored_columns:  # absent from the data; requests may still carry them
        roles[name] = ColumnRole.IGNORE.value
    params["data"] = {
        "source": "artifact",
        "target": plan.target,
        "task": plan.task,
        "artifact_id": data_id,
        "time_column": plan.time_column,
    }
    split = params.setdefault("split", {})
    split |= {
        "order": "file",
        "test_rows": plan.holdout_rows,
        "validation_rows": plan.validation_rows,
    }
    params.setdefault("history", {})["recent_rows"] = max(1, plan.learning_rows)
    params.setdefault("promotion", {}).pop("recent_data", None)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "training.yaml"
    path.write_text(yaml.safe_dump(run_config))
    return path


def recent_errors(decision: PromotionDecision) -> RetrainErrors | None:
    """The champion, the candidate and the best naive baseline on the held-out newest
    labelled rows, as promotion scored them; with the history the candidate learned from."""
    scores = decision.scores
    if TEST_SET not in scores.get("candidate", {}) or TEST_SET not in scores.get("champion", {}):
        return None
    baselines = {name: sets[TEST_SET] for name, sets in decision.baselines.items()}
    best = metric_named(decision.metric).best(baselines) if baselines else None
    history = decision.history
    return RetrainErrors(
        metric=decision.metric,
        before=scores["champion"][TEST_SET],
        after=scores["candidate"][TEST_SET],
        rows=decision.evaluation_rows.get(TEST_SET, 0),
        baseline=baselines[best] if best else None,
        baseline_name=best,
        history=history.recipe if history else None,
        history_scores=history.scores if history else {},
    )


def run_retrain(monitoring_run_id: str, monitor_config: Path) -> str:
    """Train, and deploy when promoted; always record the outcome and release the lease."""
    config = load_monitor_config(monitor_config)
    run = runs.get(monitoring_run_id)
    plan: RetrainPlan = runs.output(run, PLAN_STEP, "retrain_plan")
    if not plan.ready:
        return f"nothing to retrain: {plan.reason}"
    store = MonitorStore(config.log_database_url)
    lease = Lease(store, config.policy.lease_timeout_s, owner=plan.lease_owner)
    retrain_id = store.start_retrain(plan.model_name, plan.check_id)
    promoted, version, failed, errors, replaced = False, None, False, None, None
    keeper = LeaseKeeper(lambda: lease, lease.timeout_s, contend_as=None).start(held=True)
    try:
        try:
            data_id = str(run.steps[PLAN_STEP].outputs["retrain_data"][0].id)
            folder = retrains_dir(config.model_name) / monitoring_run_id
            base = project_path(config.retrain.training_config)
            trained = runs.train(
                training_config(plan, base, data_id, folder, config.retrain),
                f"{RUN_PREFIX}{run.name}",
            )
            decision = runs.output(trained, "promote_candidate", "promotion_decision")
            promoted, summary, errors = decision.promoted, decision.reason, recent_errors(decision)
            if promoted:
                try:
                    runs.deploy(project_path(config.retrain.deployment_config))
                except Exception:  # the version that serves stays the champion
                    promoted = False
                    restore_champion(decision)
                    raise
                version, replaced = decision.champion_after, decision.champion_before
                summary = f"v{version} promoted and deployed: {decision.reason}"
        except Exception as exc:  # recorded as the outcome: the champion keeps serving
            logger.exception("retraining failed")
            failed = True
            summary = f"retraining failed, the champion keeps serving: {exc}"
        store.finish_retrain(retrain_id, promoted, version, summary, failed, errors, replaced)
    finally:
        keeper.stop()
    logger.info("retrain outcome: %s", summary)
    return summary


def restore_champion(decision: PromotionDecision) -> None:
    """Undo a promotion whose deployment failed: the champion before it is the champion
    again (the service still serves it, and the monitor watches it), the new version is the
    challenger; the ZenML stages follow the aliases."""
    name, previous, new = decision.model_name, decision.champion_before, decision.registered_version
    if previous is None or new is None:
        return
    restore(name, previous, new)
    logger.warning("deployment of v%s failed: v%s is the champion again", new, previous)


def restore(name: str, previous: str, new: str) -> None:
    """`previous` is the champion again and `new` the challenger, in the registry's aliases
    and in ZenML's stages (production, staging)."""
    use_stack_tracking()
    client = MlflowClient()
    apply_aliases(client, name, previous, promoted=True, previous=new)
    for version, stage in ((previous, ModelStages.PRODUCTION), (new, ModelStages.STAGING)):
        zenml_id = client.get_model_version(name, version).tags.get(ZENML_VERSION_TAG)
        if zenml_id is not None:
            Client().update_model_version(name, UUID(zenml_id), stage=stage, force=True)


def roll_back(review: PromotionReview, config: MonitorConfig) -> str:
    """A promotion that its review found worse on later rows is undone: the replaced
    version is the champion again, the service is handed it, and the rollback is recorded
    (its time starts the restored version's cooldown). Under the retrain lease, so it never
    crosses a retraining's own promotion; when a retraining holds it, the next check tries
    again."""
    store = MonitorStore(config.log_database_url)
    lease = Lease(store, config.policy.lease_timeout_s)
    if not lease.acquire(time.time(), f"rollback of v{review.version}"):
        return f"rollback of v{review.version} waits: a retraining holds the lease"
    try:
        restore(review.model_name, review.replaced_version, review.version)
        log_id = PredictionLogStore(config.log_database_url).last_id()
        store.record_rollback(review.retrain_id, review.reason, log_id)
        logger.warning("%s", review.reason)
        try:
            runs.deploy(project_path(config.retrain.deployment_config))
        except Exception:  # the service follows the champion alias on its own
            logger.exception(
                "handing v%s to the service failed; it follows the champion alias within its "
                "reload interval",
                review.replaced_version,
            )
    finally:
        lease.release()
    return review.reason


def record_failed_plan(failed: runs.RunFailed, config: MonitorConfig) -> str | None:
    """A monitoring run that decided to retrain but failed before its plan was stored: the
    retraining is recorded as failed, with the run's own error, and its lease released, so
    neither a lease nor a cooldown outlives it. None when the run had decided nothing."""
    decision: Decision | None = runs.stored_output(failed.run, DECIDE_STEP, "decision")
    if decision is None or not decision.retrain:  # it failed before deciding, or kept it
        return None
    store = MonitorStore(config.log_database_url)
    summary = f"retraining failed, the champion keeps serving: planning it failed: {failed}"
    store.record_failed_retrain(config.model_name, decision.check_id, summary)
    Lease(store, config.policy.lease_timeout_s, owner=decision.lease_owner).release()
    return summary
