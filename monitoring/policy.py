"""When drift turns into a retrain: minimum window, consecutive windows, cooldown, one flight.

State lives in files in the data folder, so decisions survive a restart of the monitor.
The retrain lock is a file created atomically; it names the process that holds it and is
taken over when that process is gone or the lock is older than the stale timeout.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydantic import BaseModel

from monitoring.drift import DriftReport
from zenloop.config import PolicyConfig
from zenloop.paths import data_dir

MONITOR_DIR = "monitor"
STATE_FILE = "state.json"
LOCK_FILE = "retrain.lock"
LAST_CHECK_FILE = "last_check.json"
LAST_TRIGGER_FILE = "last_trigger.json"  # the drift report that started the last retrain
HISTORY_LENGTH = 50


def monitor_dir() -> Path:
    path = data_dir() / MONITOR_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Path, content: dict) -> None:
    """Atomic replace via a temp file unique to this call (threads may write concurrently)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(content, indent=2, default=str))
    os.replace(temporary, path)


@dataclass
class MonitorState:
    consecutive_drifted: int = 0
    last_retrain_at: float | None = None
    last_outcome: str | None = None
    history: list[dict] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path | None = None) -> MonitorState:
        path = path or monitor_dir() / STATE_FILE
        return cls(**json.loads(path.read_text())) if path.is_file() else cls()

    def save(self, path: Path | None = None) -> None:
        write_json(path or monitor_dir() / STATE_FILE, asdict(self))

    def remember(self, entry: dict) -> None:
        self.history = [*self.history, entry][-HISTORY_LENGTH:]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RetrainLock:
    """At most one retraining in flight, across processes and monitor crashes."""

    def __init__(self, stale_after_s: float, path: Path | None = None):
        self.path = path or monitor_dir() / LOCK_FILE
        self.stale_after_s = stale_after_s

    def holder(self) -> dict | None:
        """The lock's content; an unreadable one (a crash mid-write) counts by its age."""
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:
            with suppress(FileNotFoundError):
                return {"pid": None, "since": self.path.stat().st_mtime}
            return None

    def is_stale(self, holder: dict, now: float) -> bool:
        pid = holder.get("pid")
        too_old = now - holder.get("since", 0) > self.stale_after_s
        return too_old or (pid is not None and not _alive(pid))

    def acquire(self, now: float, purpose: str) -> bool:
        """Create the lock atomically; a stale one is removed first (and said so)."""
        holder = self.holder()
        if holder is not None and self.is_stale(holder, now):
            with suppress(FileNotFoundError):
                self.path.unlink()
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump({"pid": os.getpid(), "since": now, "purpose": purpose}, f)
        return True

    def hand_to(self, pid: int) -> None:
        """The retraining process now holds the lock; it releases it when done."""
        content = self.holder() or {}
        write_json(self.path, {**content, "pid": pid})

    def release(self) -> None:
        """Remove the lock only if this process holds it (a taken-over lock is not ours)."""
        holder = self.holder()
        if holder is not None and holder.get("pid") in (os.getpid(), None):
            with suppress(FileNotFoundError):
                self.path.unlink()


class Decision(BaseModel):
    retrain: bool
    reason: str
    decided_at: float
    model_version: str
    consecutive_drifted: int

    def to_markdown(self) -> str:
        verdict = "RETRAIN" if self.retrain else "no retrain"
        return f"## Monitor decision for v{self.model_version}: {verdict}\n\n{self.reason}\n"


def decide(
    report: DriftReport, state: MonitorState, lock: RetrainLock, policy: PolicyConfig
) -> Decision:
    """Apply the policy to one drift report; updates `state` and may take the lock."""
    now = time.time()

    def verdict(retrain: bool, reason: str) -> Decision:
        decision = Decision(
            retrain=retrain,
            reason=reason,
            decided_at=now,
            model_version=report.model_version,
            consecutive_drifted=state.consecutive_drifted,
        )
        state.remember(decision.model_dump() | {"drifted_share": report.drifted_share})
        return decision

    if report.window_rows < policy.min_window_rows:
        return verdict(
            False,
            f"window of {report.window_rows} rows is below "
            f"min_window_rows {policy.min_window_rows}",
        )
    state.consecutive_drifted = state.consecutive_drifted + 1 if report.drift else 0
    if not report.drift:
        return verdict(False, report.reason)
    if state.consecutive_drifted < policy.consecutive_windows:
        return verdict(
            False,
            f"drift in {state.consecutive_drifted}/{policy.consecutive_windows} consecutive "
            f"windows: {report.reason}",
        )
    if state.last_retrain_at is not None and now - state.last_retrain_at < policy.cooldown_s:
        left = policy.cooldown_s - (now - state.last_retrain_at)
        return verdict(
            False, f"cooling down after the last retrain ({left:.0f}s left): {report.reason}"
        )
    if not lock.acquire(now, f"drift on v{report.model_version}"):
        holder = lock.holder() or {}
        return verdict(
            False, f"a retrain is already in flight (pid {holder.get('pid')}): {report.reason}"
        )
    state.last_retrain_at = now
    state.consecutive_drifted = 0
    return verdict(True, f"retrain: {report.reason}")
