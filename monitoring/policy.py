"""When drift turns into a retrain: minimum window, new rows, consecutive windows, cooldown, and
one retraining at a time.

Pure rules over a `PolicyState` and a `Lease`, both kept in the prediction log's
database (monitoring.state_store), so decisions survive restarts and hold across every
process and machine that reaches that database.
"""

from __future__ import annotations

import time

from pydantic import BaseModel

from monitoring.drift_report import DriftReport
from monitoring.state_store import Lease, PolicyState
from zenloop.config import PolicyConfig


class Decision(BaseModel):
    retrain: bool
    reason: str
    decided_at: float
    model_version: str
    consecutive_drifted: int
    new_rows: int
    counted: bool = True  # False: too short a window, or the same rows again (not judged)
    lease_owner: str | None = None  # the retrain lease, taken for the retraining it asks for
    check_id: int | None = None  # the check's row in the monitor's history

    def to_markdown(self) -> str:
        verdict = "RETRAIN" if self.retrain else "no retrain"
        return (
            f"## Monitor decision for v{self.model_version}: {verdict}\n\n{self.reason}\n\n"
            f"- new rows since the last check: {self.new_rows}\n"
            f"- consecutive drifted windows: {self.consecutive_drifted}\n"
        )


def decide(
    report: DriftReport,
    new_rows: int,
    last_log_id: int,
    state: PolicyState,
    lease: Lease,
    policy: PolicyConfig,
    labelled_rows: int | None = None,
    required_labelled_rows: int = 0,
    retrained_at: float | None = None,
    now: float | None = None,
    rolled_back: str | None = None,
    labelled_since_retrain: int | None = None,
    under_review: str | None = None,
) -> Decision:
    """Apply the policy to one drift report; updates `state` and may take the lease.

    `new_rows` counts the window's rows logged after the previous check (up to
    `last_log_id`): a window without enough of them is the same traffic seen again and
    neither counts as another drifted window nor resets the count. `labelled_rows` counts
    the rows with ground truth since the drift began: with fewer than
    `required_labelled_rows`, a confirmed drift waits for data instead of starting a
    retraining that cannot learn the new traffic. `retrained_at` is when the last
    retraining that drift on this version asked for ended (a failed one does not count),
    and `labelled_since_retrain` how many labelled rows came in since the last row it saw
    (or since a rollback restored this version): the cooldown, in seconds and in rows,
    runs from there. A version that a retraining put in place has none: it
    triggers again once its own windows drift. With `performance_confirms`, a window whose
    labelled rows show the model degraded (or behind a naive forecast) needs no
    consecutive ones: the error itself is the evidence. `rolled_back` says why this version is
    being rolled back: the version it replaced takes over, and no retraining starts from
    this one. `under_review` says that this version, put in place by a retraining, is still
    waiting for its review's verdict: it is judged before anything replaces it.
    """
    now = time.time() if now is None else now

    def verdict(retrain: bool, reason: str, counted: bool = True) -> Decision:
        return Decision(
            retrain=retrain,
            reason=reason,
            decided_at=now,
            model_version=report.model_version,
            consecutive_drifted=state.consecutive_drifted,
            new_rows=new_rows,
            counted=counted,
            lease_owner=lease.owner if retrain else None,
        )

    if report.window_rows < policy.min_window_rows:
        return verdict(
            False,
            f"window of {report.window_rows} rows is below "
            f"min_window_rows {policy.min_window_rows}",
            counted=False,
        )
    if new_rows < policy.min_new_rows:
        return verdict(
            False,
            f"only {new_rows} new rows since the last check (min_new_rows "
            f"{policy.min_new_rows}): the same window is not counted twice",
            counted=False,
        )
    state.last_log_id = last_log_id
    state.consecutive_drifted = state.consecutive_drifted + 1 if report.drift else 0
    if not report.drift:
        return verdict(False, report.reason)
    performance = report.performance
    measured = performance is not None and (performance.degraded or performance.behind_baseline)
    confirmed = policy.performance_confirms and measured
    if state.consecutive_drifted < policy.consecutive_windows and not confirmed:
        return verdict(
            False,
            f"drift in {state.consecutive_drifted}/{policy.consecutive_windows} consecutive "
            f"windows: {report.reason}",
        )
    if rolled_back is not None:
        return verdict(False, f"no retraining, the version is rolled back ({rolled_back})")
    if under_review is not None:
        return verdict(False, f"no retraining before the promotion's verdict ({under_review})")
    if retrained_at is not None and now - retrained_at < policy.cooldown_s:
        left = policy.cooldown_s - (now - retrained_at)
        return verdict(
            False, f"cooling down after the last retrain ({left:.0f}s left): {report.reason}"
        )
    if labelled_since_retrain is not None and labelled_since_retrain < policy.cooldown_rows:
        return verdict(
            False,
            f"cooling down after the last retrain: {labelled_since_retrain}/"
            f"{policy.cooldown_rows} labelled rows since: {report.reason}",
        )
    if labelled_rows is not None and labelled_rows < required_labelled_rows:
        return verdict(
            False,
            f"drift confirmed, waiting for labelled data: {labelled_rows}/"
            f"{required_labelled_rows} rows with feedback since it began: {report.reason}",
        )
    if not lease.acquire(now, f"drift on v{report.model_version}"):
        holder = lease.holder() or {}
        return verdict(
            False,
            f"a retrain is already in flight ({holder.get('purpose')}, lease renewed at "
            f"{holder.get('renewed_at')}): {report.reason}",
        )
    state.consecutive_drifted = 0
    return verdict(True, f"retrain: {report.reason}")
