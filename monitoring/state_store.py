"""The monitor's durable records, in the prediction log's own database.

Every drift check, the policy's state, the retrain lease and every retraining outcome
live beside the logged predictions, so they survive restarts, are shared by every
process that reaches the database (PostgreSQL on a team's stack), and tie nothing to the
machine a step runs on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from monitoring.database import engine_for

RETRAIN_LEASE = "retrain"  # at most one retraining at a time
MONITOR_LEASE = "monitor"  # at most one monitor checking at a time; the others stand by
OWNER_LENGTH = 64
NAME_LENGTH = 128

metadata = sa.MetaData()
checks = sa.Table(
    "monitor_checks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("checked_at", sa.Float, nullable=False, index=True),
    sa.Column("model_name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("model_version", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("window_rows", sa.Integer, nullable=False),
    sa.Column("new_rows", sa.Integer, nullable=False),
    sa.Column("drifted_share", sa.Float, nullable=False),
    sa.Column("last_log_id", sa.Integer, nullable=True),  # the newest logged row it saw
    sa.Column("drift", sa.Boolean, nullable=False),
    sa.Column("retrain", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("report", sa.Text, nullable=False),
)
policy_state = sa.Table(
    "monitor_state",
    metadata,
    sa.Column("model_name", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("consecutive_drifted", sa.Integer, nullable=False),
    sa.Column("last_log_id", sa.Integer, nullable=False),
)
leases = sa.Table(
    "monitor_leases",
    metadata,
    sa.Column("name", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("owner", sa.String(OWNER_LENGTH), nullable=True),
    sa.Column("purpose", sa.Text, nullable=True),
    sa.Column("acquired_at", sa.Float, nullable=True),
    sa.Column("renewed_at", sa.Float, nullable=True),
)
retrains = sa.Table(
    "monitor_retrains",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("check_id", sa.Integer, nullable=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("promoted", sa.Boolean, nullable=True),
    sa.Column("deployed_version", sa.String(NAME_LENGTH), nullable=True),
    sa.Column("summary", sa.Text, nullable=True),
    sa.Column("failed", sa.Boolean, nullable=True),  # the retraining itself failed
    # both models scored on the same held-out labelled rows of the drifted traffic
    sa.Column("error_metric", sa.String(NAME_LENGTH), nullable=True),
    sa.Column("error_before", sa.Float, nullable=True),  # the champion that drifted
    sa.Column("error_after", sa.Float, nullable=True),  # the retrained candidate
    sa.Column("error_rows", sa.Integer, nullable=True),
    # the best naive baseline on the same rows, and the history the candidate learned from
    sa.Column("error_baseline", sa.Float, nullable=True),
    sa.Column("baseline_name", sa.String(NAME_LENGTH), nullable=True),
    sa.Column("history", sa.String(NAME_LENGTH), nullable=True),
    sa.Column("history_scores", sa.Text, nullable=True),  # JSON: recipe -> validation score
    sa.Column("replaced_version", sa.String(NAME_LENGTH), nullable=True),
    # after a promotion: the replaced and the new version on the same later labelled rows
    sa.Column("later_rows", sa.Integer, nullable=True),
    sa.Column("later_before", sa.Float, nullable=True),
    sa.Column("later_after", sa.Float, nullable=True),
    sa.Column("later_baseline", sa.Float, nullable=True),
    sa.Column("reviewed_at", sa.Float, nullable=True),
    sa.Column("review", sa.Text, nullable=True),
    sa.Column("rolled_back_at", sa.Float, nullable=True),
    sa.Column("rolled_back_log_id", sa.Integer, nullable=True),
)


@dataclass
class PolicyState:
    """What the trigger policy remembers between checks."""

    consecutive_drifted: int = 0
    last_log_id: int = 0


@dataclass(frozen=True)
class RetrainErrors:
    """The champion, the retrained candidate and the best naive baseline on the same
    held-out labelled rows; and the history recipe the candidate learned with."""

    metric: str
    before: float
    after: float
    rows: int
    baseline: float | None = None
    baseline_name: str | None = None
    history: str | None = None
    history_scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LaterScores:
    """A promoted version and the one it replaced on the same labelled rows that came after
    the promotion, with the naive baseline on them; and the verdict, once there is one."""

    rows: int
    before: float
    after: float
    baseline: float | None
    review: str


class MonitorStore:
    """Checks, policy state, the retrain lease and retraining outcomes of one database."""

    def __init__(self, url: str | None = None):
        self.engine = engine_for(url)

    # -- policy state -------------------------------------------------------------------
    def load_state(self, model_name: str) -> PolicyState:
        query = sa.select(policy_state).where(policy_state.c.model_name == model_name)
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        if row is None:
            return PolicyState()
        return PolicyState(row["consecutive_drifted"], row["last_log_id"])

    def save_state(self, model_name: str, state: PolicyState) -> None:
        values = {
            "consecutive_drifted": state.consecutive_drifted,
            "last_log_id": state.last_log_id,
        }
        with self.engine.begin() as connection:
            updated = connection.execute(
                policy_state.update().where(policy_state.c.model_name == model_name), values
            )
            if updated.rowcount == 0:
                connection.execute(policy_state.insert(), {"model_name": model_name, **values})

    # -- checks -------------------------------------------------------------------------
    def record_check(
        self,
        report: dict[str, Any],
        retrain: bool,
        reason: str,
        last_log_id: int | None = None,
        new_rows: int | None = None,
        counted: bool = True,
    ) -> int:
        """One check: its report, the decision and the rows it saw for the first time
        (`new_rows`; the whole window when not given). Whether the policy counted it (not:
        too short a window, the same rows again) is kept with its report."""
        row = {
            "last_log_id": last_log_id,
            "checked_at": time.time(),
            "model_name": report["model_name"],
            "model_version": report["model_version"],
            "window_rows": report["window_rows"],
            "new_rows": report["window_rows"] if new_rows is None else new_rows,
            "drifted_share": report["drifted_share"],
            "drift": report["drift"],
            "retrain": retrain,
            "reason": reason,
            "report": json.dumps({**report, "counted": counted}, default=str),
        }
        with self.engine.begin() as connection:
            return connection.execute(checks.insert(), row).inserted_primary_key[0]

    def recent_checks(self, limit: int, model_name: str | None = None) -> list[dict[str, Any]]:
        """The newest checks first, each with its full drift report."""
        query = sa.select(checks).order_by(checks.c.id.desc()).limit(limit)
        if model_name is not None:
            query = query.where(checks.c.model_name == model_name)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [{**row, "report": json.loads(row["report"])} for row in rows]

    def drift_onset_log_id(
        self, model_name: str, model_version: str, before_check_id: int | None = None
    ) -> int:
        """Where the current drift began (or, with `before_check_id`, the drift that check
        saw): the end of this version's last clean window, or, for a version a retraining
        put in place, the last row that retraining learned from.

        A retraining learns from the traffic after it: not from the normal rows that the
        drifted windows still held, nor again from rows its champion learned from already.
        """
        clean = sa.select(sa.func.max(checks.c.last_log_id)).where(
            checks.c.model_name == model_name,
            checks.c.model_version == model_version,
            checks.c.drift.is_(False),
        )
        if before_check_id is not None:
            clean = clean.where(checks.c.id < before_check_id)
        learned = (
            sa.select(sa.func.max(checks.c.last_log_id))
            .select_from(retrains.join(checks, retrains.c.check_id == checks.c.id))
            .where(
                retrains.c.model_name == model_name,
                retrains.c.deployed_version == model_version,
            )
        )
        with self.engine.connect() as connection:
            ends = [connection.execute(query).scalar() for query in (clean, learned)]
        return max((end for end in ends if end is not None), default=0)

    def last_trigger(self, model_name: str | None = None) -> dict[str, Any] | None:
        """The newest check that decided to retrain."""
        query = sa.select(checks).where(checks.c.retrain.is_(True))
        if model_name is not None:
            query = query.where(checks.c.model_name == model_name)
        with self.engine.connect() as connection:
            row = connection.execute(query.order_by(checks.c.id.desc()).limit(1)).mappings().first()
        return None if row is None else {**row, "report": json.loads(row["report"])}

    # -- retraining outcomes ------------------------------------------------------------
    def start_retrain(self, model_name: str, check_id: int | None) -> int:
        row = {"model_name": model_name, "check_id": check_id, "started_at": time.time()}
        with self.engine.begin() as connection:
            return connection.execute(retrains.insert(), row).inserted_primary_key[0]

    def finish_retrain(
        self,
        retrain_id: int,
        promoted: bool,
        deployed_version: str | None,
        summary: str,
        failed: bool = False,
        errors: RetrainErrors | None = None,
        replaced_version: str | None = None,
    ) -> None:
        values = {
            "finished_at": time.time(),
            "promoted": promoted,
            "deployed_version": deployed_version,
            "summary": summary,
            "failed": failed,
            "replaced_version": replaced_version,
        }
        if errors is not None:
            values |= {
                "error_metric": errors.metric,
                "error_before": errors.before,
                "error_after": errors.after,
                "error_rows": errors.rows,
                "error_baseline": errors.baseline,
                "baseline_name": errors.baseline_name,
                "history": errors.history,
                "history_scores": json.dumps(errors.history_scores),
            }
        with self.engine.begin() as connection:
            connection.execute(retrains.update().where(retrains.c.id == retrain_id), values)

    def record_failed_retrain(self, model_name: str, check_id: int | None, summary: str) -> int:
        """A retraining that failed before it could start (e.g. while it was planned)."""
        retrain_id = self.start_retrain(model_name, check_id)
        self.finish_retrain(retrain_id, False, None, summary, failed=True)
        return retrain_id

    def retrained_at(self, model_name: str, model_version: str) -> float | None:
        """When the newest retraining that drift on `model_version` asked for ended, unless
        it failed, or when a rollback last made it the champion again: the cooldown runs
        from there. A new version starts with none."""
        query = (
            sa.select(sa.func.max(retrains.c.finished_at))
            .select_from(retrains.join(checks, retrains.c.check_id == checks.c.id))
            .where(
                retrains.c.model_name == model_name,
                checks.c.model_version == model_version,
                retrains.c.finished_at.is_not(None),
                sa.or_(retrains.c.failed.is_(None), retrains.c.failed.is_(False)),
            )
        )
        with self.engine.connect() as connection:
            ended = connection.execute(query).scalar()
        restored = self.rolled_back_at(model_name, model_version)
        return max((t for t in (ended, restored) if t is not None), default=None)

    def cooldown_log_id(self, model_name: str, model_version: str) -> int | None:
        """Where the labelled rows a cooldown counts begin: the last row the newest
        retraining that drift on `model_version` asked for saw (unless it failed), or the
        log's last row when a rollback made it the champion again. None: no cooldown."""
        seen = (
            sa.select(sa.func.max(checks.c.last_log_id))
            .select_from(retrains.join(checks, retrains.c.check_id == checks.c.id))
            .where(
                retrains.c.model_name == model_name,
                checks.c.model_version == model_version,
                retrains.c.finished_at.is_not(None),
                sa.or_(retrains.c.failed.is_(None), retrains.c.failed.is_(False)),
            )
        )
        restored = sa.select(sa.func.max(retrains.c.rolled_back_log_id)).where(
            retrains.c.model_name == model_name,
            retrains.c.replaced_version == model_version,
        )
        with self.engine.connect() as connection:
            ends = [connection.execute(query).scalar() for query in (seen, restored)]
        return max((end for end in ends if end is not None), default=None)

    def promotion_of(self, model_name: str, version: str) -> dict[str, Any] | None:
        """The retraining that put `version` in place, unless it was rolled back: the one a
        review of later rows judges. None for a version no retraining deployed."""
        query = (
            sa.select(retrains)
            .where(
                retrains.c.model_name == model_name,
                retrains.c.deployed_version == version,
                retrains.c.replaced_version.is_not(None),
                retrains.c.rolled_back_at.is_(None),
            )
            .order_by(retrains.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else dict(row)

    def record_later_scores(self, retrain_id: int, scores: LaterScores) -> None:
        """The latest review of a promotion on the labelled rows after it."""
        values = {
            "later_rows": scores.rows,
            "later_before": scores.before,
            "later_after": scores.after,
            "later_baseline": scores.baseline,
            "reviewed_at": time.time(),
            "review": scores.review,
        }
        with self.engine.begin() as connection:
            connection.execute(retrains.update().where(retrains.c.id == retrain_id), values)

    def record_rollback(self, retrain_id: int, reason: str, log_id: int) -> None:
        """The promotion was undone: its version is no longer the champion. The rollback
        starts a cooldown for the restored version, as a retraining that kept it would,
        from `log_id`, the log's last row then."""
        values = {"rolled_back_at": time.time(), "review": reason, "rolled_back_log_id": log_id}
        with self.engine.begin() as connection:
            connection.execute(retrains.update().where(retrains.c.id == retrain_id), values)

    def rolled_back_at(self, model_name: str, restored_version: str) -> float | None:
        """When a promotion that replaced `restored_version` was last rolled back."""
        query = sa.select(sa.func.max(retrains.c.rolled_back_at)).where(
            retrains.c.model_name == model_name,
            retrains.c.replaced_version == restored_version,
        )
        with self.engine.connect() as connection:
            return connection.execute(query).scalar()

    def recent_retrains(self, limit: int, model_name: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(retrains).order_by(retrains.c.id.desc()).limit(limit)
        if model_name is not None:
            query = query.where(retrains.c.model_name == model_name)
        with self.engine.connect() as connection:
            return [dict(row) for row in connection.execute(query).mappings().all()]


class Lease:
    """One holder at a time (of a retraining, of the monitor's checks), across processes,
    machines and crashes.

    A named row with an owner and a renewal time. Taking it is one conditional UPDATE (free,
    or not renewed for `timeout_s`), so two contenders can never both win; a holder that
    keeps renewing is never taken over, however long it runs.
    """

    def __init__(
        self,
        store: MonitorStore,
        timeout_s: float,
        owner: str | None = None,
        name: str = RETRAIN_LEASE,
    ):
        self.store = store
        self.timeout_s = timeout_s
        self.owner = owner or uuid4().hex
        self.name = name

    def _ensure_row(self) -> None:
        try:
            with self.store.engine.begin() as connection:
                connection.execute(leases.insert(), {"name": self.name})
        except IntegrityError:  # it exists already (perhaps inserted concurrently)
            pass

    def acquire(self, now: float, purpose: str) -> bool:
        self._ensure_row()
        free = sa.or_(leases.c.owner.is_(None), leases.c.renewed_at < now - self.timeout_s)
        query = (
            leases.update()
            .where(leases.c.name == self.name, free)
            .values(owner=self.owner, purpose=purpose, acquired_at=now, renewed_at=now)
        )
        with self.store.engine.begin() as connection:
            return connection.execute(query).rowcount == 1

    def renew(self, now: float) -> bool:
        """False when the lease is no longer ours."""
        query = (
            leases.update()
            .where(leases.c.name == self.name, leases.c.owner == self.owner)
            .values(renewed_at=now)
        )
        with self.store.engine.begin() as connection:
            return connection.execute(query).rowcount == 1

    def release(self) -> None:
        """Give the lease up if it is still ours (a taken-over lease is not)."""
        query = (
            leases.update()
            .where(leases.c.name == self.name, leases.c.owner == self.owner)
            .values(owner=None, purpose=None)
        )
        with self.store.engine.begin() as connection:
            connection.execute(query)

    def holder(self) -> dict[str, Any] | None:
        query = sa.select(leases).where(leases.c.name == self.name)
        with self.store.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None or row["owner"] is None else dict(row)
