"""A retrain runner started ahead of the monitor's decision, waiting for its one job.

A fresh `zenloop retrain` process spends about 10 s on its start-up (the interpreter,
zenml, mlflow, the model libraries, the ZenML client) before its training run starts;
that is the largest fixed cost between a decision to retrain and the new version serving.
The monitor service therefore keeps one runner that has paid it already
(`zenloop retrain --warm`). When a plan is ready, `hand` gives it the monitoring run; it
then runs `run_retrain` exactly as a fresh runner would (the lease passes to it the same
way) and exits when done. A runner still starting is waited for, briefly; one that is
dead, not warm by then, or does not take the job in time is not used: the caller spawns
a fresh runner, as before.

The hand-over is a file in the model's `retrains/warm/`, named by the runner's pid: the
monitor writes `<pid>.job`, the runner takes it by renaming it to `<pid>.taken`. A rename
or an unlink of one file succeeds for one side only, so a job the runner did not take in
time is withdrawn by the monitor (it unlinks the file) and never runs twice.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ops.processes import BackgroundProcess, spawn, zenloop_command
from zenloop.files import write_atomically
from zenloop.paths import model_dir
from zenloop.pids import alive
from zenloop.waiting import poll_until

logger = logging.getLogger(__name__)

WARM_DIR = Path("retrains") / "warm"  # in the model's folder, beside its retrainings' logs
# the runner looks for its job this often: a stat, cheap, and a small share of the saving
JOB_POLL_S = 0.05
# a warm runner exits after this long unused (the monitor starts another): it never
# keeps a ZenML client and its connections open for days
MAX_IDLE_S = 3600.0
# how long the monitor waits for a warm runner to take a job before it withdraws it
TAKE_TIMEOUT_S = 5.0
# how long a plan waits for a runner still starting: about a fresh runner's start-up on a
# quiet machine, so waiting is never much slower than spawning, and the lease the plan
# holds unrenewed meanwhile stays far from its timeout
WARMING_WAIT_S = 10.0
TAKE_POLL_S = 0.02
STOP_TIMEOUT_S = 10.0
# runners that died in a row without ever being warm: the monitor stops starting them
MAX_FAILED_STARTS = 3


# set to 0 to spawn every retraining fresh (the runner costs its memory while it waits)
ENABLE_ENV = "ZENLOOP_WARM_RETRAIN_RUNNER"


def warm_runner_enabled() -> bool:
    return os.environ.get(ENABLE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True)
class Job:
    """What a warm runner is handed: the monitoring run that planned the retraining."""

    monitoring_run_id: str
    monitor_config: Path


def warm_dir(model: str) -> Path:
    """Where one model's warm runners and its monitor hand over jobs."""
    path = model_dir(model) / WARM_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def _files(model: str, pid: int) -> dict[str, Path]:
    folder = warm_dir(model)
    return {kind: folder / f"{pid}.{kind}" for kind in ("ready", "job", "taken", "pid", "log")}


# --- the runner's side (`zenloop retrain --warm`) ---------------------------------------


def prewarm() -> None:
    """Pay the start-up a retraining would pay after the decision: the imports of the
    runner, the pipelines and their steps (zenml, mlflow, pandas, scikit-learn, xgboost),
    and the ZenML client with its active stack."""
    from zenml.client import Client

    import ops.retrain_runner  # noqa: F401  (zenml, mlflow)
    import pipelines.deployment  # noqa: F401
    import pipelines.training  # noqa: F401  (the steps and the model families)

    Client().active_stack_model  # noqa: B018  (loads the store and the stack)


def wait_for_job(parent_pid: int, model: str, max_idle_s: float = MAX_IDLE_S) -> Job | None:
    """Say this runner of `model`'s retrainings is warm, then wait for a job: None when the
    monitor that started it is gone or nothing came within `max_idle_s` (then this process
    just exits)."""
    files = _files(model, os.getpid())
    files["ready"].write_text(str(time.time()))
    deadline = time.monotonic() + max_idle_s
    try:
        while time.monotonic() < deadline and alive(parent_pid):
            try:
                os.rename(files["job"], files["taken"])  # atomic: the job is ours now
            except FileNotFoundError:
                time.sleep(JOB_POLL_S)
                continue
            content = json.loads(files["taken"].read_text())
            return Job(content["run"], Path(content["config"]))
        logger.info("warm runner exits unused (its monitor stopped, or idle)")
        return None
    finally:
        files["ready"].unlink(missing_ok=True)


def take_log(log_file: Path, job: Job, model: str) -> Path:
    """The runner's log becomes the retraining's (`<model>/retrains/<run>.log`, as a fresh
    runner's): the process keeps writing to the same open file under its new name."""
    from ops.retrain_runner import retrains_dir

    target = retrains_dir(model) / f"{job.monitoring_run_id}.log"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(log_file, target)
    except OSError:  # the log stays where it is; the retraining is not worth failing
        logger.warning("could not move %s to %s", log_file, target)
        return log_file
    return target


def finish(model: str, pid: int | None = None, keep_log: bool = True) -> None:
    """Remove a runner's hand-over files once it is done; its log too unless kept (the
    log of a runner that was never used says only that it got warm)."""
    for kind, path in _files(model, pid or os.getpid()).items():
        if kind != "log" or not keep_log:
            path.unlink(missing_ok=True)


# --- the monitor's side ----------------------------------------------------------------


class WarmRunner:
    """The one warm runner a monitor keeps; `hand` uses it, `ensure` replaces it."""

    def __init__(self, monitor_config: Path, model: str):
        self.monitor_config = monitor_config  # what the runner is started with (-c)
        self.model = model  # the config's model: its folder holds the hand-over files
        self.pid: int | None = None
        self.warmed = False  # the current runner was seen warm
        self.failed_starts = 0

    def _process(self, pid: int) -> BackgroundProcess:
        files = _files(self.model, pid)
        return BackgroundProcess(files["pid"], files["log"])

    def ready(self) -> bool:
        return (
            self.pid is not None
            and alive(self.pid)
            and _files(self.model, self.pid)["ready"].exists()
        )

    def ensure(self) -> int | None:
        """A warm runner exists (started now if none is alive); None when runners died
        before ever being warm `MAX_FAILED_STARTS` times in a row: then retrainings spawn
        fresh runners, as without one."""
        if self.pid is not None and alive(self.pid):
            if _files(self.model, self.pid)["ready"].exists():
                self.warmed, self.failed_starts = True, 0
            return self.pid
        if self.pid is not None:  # it died unused: a failed start unless it was warm
            self.failed_starts += 0 if self.warmed else 1
            finish(self.model, self.pid, keep_log=not self.warmed)  # a failed start's log says why
            self.pid = None
        if self.failed_starts >= MAX_FAILED_STARTS:
            return None
        log = warm_dir(self.model) / f"starting-{os.getpid()}-{time.time_ns()}.log"
        command = zenloop_command(
            "retrain", "--warm", "--parent", str(os.getpid()), "-c", str(self.monitor_config)
        )
        pid = spawn(command, log)
        files = _files(self.model, pid)
        os.replace(log, files["log"])  # named by its pid, like its hand-over files
        files["pid"].write_text(str(pid))
        self.pid, self.warmed = pid, False
        logger.info("warm retrain runner starting: pid %d", pid)
        return pid

    def hand(self, job: Job) -> int | None:
        """Give `job` to the warm runner; its pid once taken, None when it cannot take it
        (the caller then spawns a fresh runner). A runner that was handed a job is no
        longer this monitor's warm runner: `ensure` starts the next one."""
        if self.pid is None or not alive(self.pid):
            return None
        # one still starting is ahead of a fresh runner: it is waited for, within bounds
        if not poll_until(lambda: self.ready() or not alive(self.pid), WARMING_WAIT_S, TAKE_POLL_S):
            logger.warning("warm runner %d is not warm yet: spawning a runner", self.pid)
        if not self.ready():
            self.stop()  # its start-up would take the cores from the fresh runner's
            return None
        pid, files = self.pid, _files(self.model, self.pid)
        content = {"run": job.monitoring_run_id, "config": str(job.monitor_config)}
        write_atomically(files["job"], json.dumps(content))
        deadline = time.monotonic() + TAKE_TIMEOUT_S
        while time.monotonic() < deadline and files["job"].exists():  # renamed once taken
            time.sleep(TAKE_POLL_S)
        try:
            files["job"].unlink()  # withdrawn: it can no longer take it
        except FileNotFoundError:  # taken
            pass
        else:
            logger.warning("warm runner %d did not take the job: spawning a runner", pid)
            self.stop()
            return None
        self.pid, self.failed_starts = None, 0
        files["pid"].unlink(missing_ok=True)  # the retraining is no longer ours to stop
        logger.info("retraining handed to the warm runner: pid %d", pid)
        return pid

    def stop(self) -> None:
        """Stop the warm runner if it was never handed a job (a handed one is a retraining,
        which outlives the monitor as a fresh runner does)."""
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        try:
            self._process(pid).stop(STOP_TIMEOUT_S)
        except Exception:  # stopping is best effort; the runner also exits on its own
            logger.exception("stopping warm runner %d failed", pid)
        finish(self.model, pid, keep_log=False)
        logger.info("warm retrain runner %d stopped", pid)
