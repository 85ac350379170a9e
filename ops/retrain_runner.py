"""The retrain runner: a process of its own that trains on a plan and deploys a winner.

The monitor service launches it with the plan the monitoring pipeline wrote and hands it
the retrain lock; it always records the outcome and releases the lock, even on failure.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from monitoring.policy import RetrainLock, monitor_dir, write_json
from monitoring.retraining import RetrainPlan
from ops import runs
from ops.processes import spawn, zenloop_command

logger = logging.getLogger(__name__)

OUTCOME_FILE = "last_retrain.json"
RUNNER_LOG = "retrain.log"


@dataclass
class RetrainOutcome:
    plan: str
    started_at: float
    finished_at: float
    promoted: bool
    deployed_version: str | None
    summary: str

    def save(self) -> None:
        write_json(monitor_dir() / OUTCOME_FILE, asdict(self))

    @staticmethod
    def load() -> dict | None:
        path = monitor_dir() / OUTCOME_FILE
        return json.loads(path.read_text()) if path.is_file() else None


def launch(plan: RetrainPlan, stale_lock_s: float) -> int:
    """Start `zenloop retrain --plan …` detached; the lock passes to it."""
    lock = RetrainLock(stale_lock_s)
    try:
        plan_path = Path(str(plan.plan))
        pid = spawn(
            zenloop_command("retrain", "--plan", str(plan_path)), plan_path.parent / RUNNER_LOG
        )
    except Exception:
        lock.release()
        raise
    lock.hand_to(pid)
    logger.info("retraining started: pid %d, plan %s", pid, plan.plan)
    return pid


def run_plan(plan_path: Path) -> RetrainOutcome:
    """Train, and deploy when promoted; always record the outcome and release the lock."""
    plan = json.loads(plan_path.read_text())
    lock = RetrainLock(plan["stale_lock_s"])
    started = time.time()
    promoted, version = False, None
    try:
        run = runs.train(plan["training_config"])
        decision = runs.output(run, "promote_candidate", "promotion_decision")
        promoted, summary = decision.promoted, decision.reason
        if promoted:
            runs.deploy(plan["deployment_config"])
            version = decision.champion_after
            summary = f"v{version} promoted and deployed: {decision.reason}"
    except Exception as exc:  # recorded as the outcome: the champion keeps serving
        logger.exception("retraining failed")
        summary = f"retraining failed, the champion keeps serving: {exc}"
    finally:
        lock.release()
    outcome = RetrainOutcome(str(plan_path), started, time.time(), promoted, version, summary)
    outcome.save()
    logger.info("retrain outcome: %s", summary)
    return outcome
