"""The monitor service (`zenloop monitor --watch`): checks on events, with a periodic backstop.

Each check is one run of the monitoring pipeline (so every decision is in ZenML); when
the run plans a retraining, this service launches the retrain runner. Events that arrive
during a check are coalesced into one more check. While a retraining it launched runs,
events wait for it to end (only the backstop checks meanwhile): such checks could not
trigger anything, and on a small machine they would take the cores the retraining needs.
A heartbeat file and `GET /health` on the event port say the monitor is alive, what it
decided last, and whether the prediction log it reads answers (its database and last row).

Several monitors may watch one log (on other machines, say): only the holder of the
monitor lease checks, the others stand by, and one of them takes over once the holder has
not renewed it for `active_lease_timeout_s` (killed, cut off from the database).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path

import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from monitoring.alerts import AlertCursor, new_alerts
from monitoring.database import resolve_log_url
from monitoring.log_store import PredictionLogStore
from monitoring.retraining import RetrainPlan
from monitoring.review import PromotionReview, Verdict
from monitoring.state_store import MONITOR_LEASE, Lease, MonitorStore
from ops import alerts, runs
from ops.leases import LeaseKeeper
from ops.monitor_app import create_app
from ops.processes import BackgroundProcess, zenloop_command
from ops.retrain_runner import DECIDE_STEP, PLAN_STEP, launch, record_failed_plan, roll_back
from ops.warm_runner import WarmRunner, warm_runner_enabled
from ui.records import baseline_alert
from zenloop.admin_token import ensure_admin_token
from zenloop.config import MonitorConfig, load_monitor_config
from zenloop.files import write_atomically
from zenloop.paths import data_dir, model_dir, project_path
from zenloop.pids import alive

logger = logging.getLogger(__name__)

MONITOR_DIR = "monitor"  # the monitor process's own files: pid, heartbeat
REVIEW_STEP = "review_promotion"
HEARTBEAT_FILE = "heartbeat.json"
ALERT_LOOKBACK = 20  # checks and retrainings read for alerts at each look
START_TIMEOUT_S = 120.0


def monitor_dir(model_name: str) -> Path:
    path = model_dir(model_name) / MONITOR_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def monitor_process(model_name: str) -> BackgroundProcess:
    """The model's monitor: one per model in a data folder, each with its own files."""
    return BackgroundProcess(
        monitor_dir(model_name) / "monitor.pid", model_dir(model_name) / "monitor.log"
    )


def watched_models() -> list[str]:
    """The models whose monitor ever ran from this data folder (they left a heartbeat)."""
    beats = data_dir().glob(f"*/{MONITOR_DIR}/{HEARTBEAT_FILE}")
    return sorted(path.parent.parent.name for path in beats)


def start_background(
    config_path: Path, max_seconds: float | None = None, events_port: int | None = None
) -> int:
    """`zenloop monitor --watch` detached; returns once its first heartbeat is written."""
    model = load_monitor_config(config_path).model_name
    args = ["monitor", "-c", str(config_path), "--watch"]
    if max_seconds:
        args += ["--max-seconds", str(max_seconds)]
    if events_port is not None:
        args += ["--events-port", str(events_port)]
    before = (read_heartbeat(model) or {}).get("started_at", 0)

    def started() -> bool:
        return (read_heartbeat(model) or {}).get("started_at", 0) > before

    return monitor_process(model).start(zenloop_command(*args), started, START_TIMEOUT_S)


def check_once(
    config_path: Path, warm: WarmRunner | None = None
) -> tuple[dict, RetrainPlan, int | None]:
    """One monitoring run; a planned retraining is launched (on the warm runner, when one
    is ready). Returns the decision, the plan and the retrain runner's pid (None when
    nothing was launched).

    A run that fails after its plan was stored still launches a planned retraining (a
    later step failed, e.g. the history plot); one that fails before it, having decided to
    retrain, is recorded as a failed retraining with its error and gives its lease back.
    """
    try:
        run = runs.monitor(config_path)
    except runs.RunFailed as failed:
        plan = runs.stored_output(failed.run, PLAN_STEP, "retrain_plan")
        if plan is None:
            record_failed_plan(failed, load_monitor_config(config_path))
        if plan is None or not plan.ready:
            raise
        logger.error("%s; the retraining it planned goes ahead", failed)
        run = failed.run
    review: PromotionReview | None = runs.stored_output(run, REVIEW_STEP, "promotion_review")
    if review is not None and review.verdict == Verdict.ROLLBACK:
        roll_back(review, load_monitor_config(config_path))
    decision = runs.output(run, DECIDE_STEP, "decision")
    plan = runs.output(run, PLAN_STEP, "retrain_plan")
    pid = launch(str(run.id), config_path, warm) if plan.ready else None
    return decision.model_dump(mode="json"), plan, pid


def read_heartbeat(model_name: str) -> dict | None:
    path = monitor_dir(model_name) / HEARTBEAT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


class Watcher:
    def __init__(self, config_path: Path, config: MonitorConfig, max_seconds: float | None = None):
        self.config_path = config_path
        self.config = config.with_service()  # the event address, when it names none
        self.max_seconds = max_seconds
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.started_at = time.time()
        self.checks = 0
        self.failed_checks = 0
        self.events = 0
        self.last_decision: dict | None = None
        self.last_error: dict | None = None  # the newest failed check: when and why
        self.retrain_pid: int | None = None  # the retraining this monitor launched last
        # a retrain runner started ahead, so a retraining skips the runner's start-up
        self.warm = WarmRunner(config_path, config.model_name) if warm_runner_enabled() else None
        self.log: PredictionLogStore | None = None  # opened once the database answers
        self.records: MonitorStore | None = None  # likewise
        self.alert_cursor: AlertCursor | None = None  # what was told; set once records answer
        self.claim = LeaseKeeper(  # only the holder checks
            self._open_claim,
            self.config.active_lease_timeout_s,
            contend_as=f"monitor pid {os.getpid()} on {socket.gethostname()}",
        )

    def _open_claim(self) -> Lease:
        store = MonitorStore(self.config.log_database_url)
        return Lease(store, self.config.active_lease_timeout_s, name=MONITOR_LEASE)

    def role(self) -> str:
        return "active" if self.claim.holds() else "standby"

    def log_state(self) -> dict:
        """The prediction log the checks read: its database and latest row, or its error."""
        url = resolve_log_url(self.config.log_database_url)
        state: dict = {"database": make_url(url).render_as_string(hide_password=True)}
        try:
            self.log = self.log or PredictionLogStore(url)
            state["last_id"] = self.log.last_id()
        except SQLAlchemyError as exc:
            state["error"] = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return state

    def last_retrain(self) -> dict | None:
        """The newest retraining's outcome, failed ones included, from the monitor's records."""
        try:
            self.records = self.records or MonitorStore(self.config.log_database_url)
            newest = self.records.recent_retrains(1, self.config.model_name)
        except SQLAlchemyError:  # the log's own state says why
            return None
        if not newest:
            return None
        keys = (
            "id", "started_at", "finished_at", "promoted", "failed", "summary",
            "review", "rolled_back_at",
        )  # fmt: skip
        return {key: newest[0][key] for key in keys}

    def alerts(self) -> list[str]:
        """What a person should know now: the champion behind a naive baseline on the latest
        check, a promotion rolled back by the latest review."""
        try:
            self.records = self.records or MonitorStore(self.config.log_database_url)
            checks = self.records.recent_checks(1, self.config.model_name)
            retrains = self.records.recent_retrains(1, self.config.model_name)
        except SQLAlchemyError:
            return []
        found = []
        if checks and (alert := baseline_alert(checks[0]["report"].get("performance"))):
            found.append(alert)
        if retrains and retrains[0]["rolled_back_at"]:
            found.append(retrains[0]["review"])
        return found

    def _recent_records(self) -> tuple[list[dict], list[dict]] | None:
        try:
            self.records = self.records or MonitorStore(self.config.log_database_url)
            checks = self.records.recent_checks(ALERT_LOOKBACK, self.config.model_name)
            retrains = self.records.recent_retrains(ALERT_LOOKBACK, self.config.model_name)
        except SQLAlchemyError:
            return None
        return checks, retrains

    def start_telling(self) -> None:
        """From now on, alerts: what happened before this monitor became active is no news."""
        records = self._recent_records()
        self.alert_cursor = AlertCursor.from_now(*records) if records else None

    def tell(self) -> None:
        """Alerts for what happened since the last look, to the stack's alerter (the active
        monitor only)."""
        records = self._recent_records()
        if records is None:
            return
        if self.alert_cursor is None:  # the records did not answer when it became active
            self.alert_cursor = AlertCursor.from_now(*records)
            return
        checks, retrains = records
        found = new_alerts(self.config.model_name, checks, retrains, self.alert_cursor)
        where = "zenloop status" + (
            f" -c {self.config.serving_config}" if self.config.serving_config else ""
        )
        alerts.send(found, where)

    def heartbeat(self) -> dict:
        beat = {
            "model": self.config.model_name,
            "monitoring_config": str(self.config_path.resolve()),
            "serving_config": self.config.serving_config
            and str(project_path(self.config.serving_config)),
            "pid": os.getpid(),
            "at": time.time(),
            "started_at": self.started_at,
            "role": self.role(),
            "checks": self.checks,
            "failed_checks": self.failed_checks,
            "last_error": self.last_error,
            "events": self.events,
            "retraining": self.retraining(),
            "last_decision": self.last_decision,
            "last_retrain": self.last_retrain(),
            "alerts": self.alerts(),
            "log": self.log_state(),
        }
        write_atomically(
            monitor_dir(self.config.model_name) / HEARTBEAT_FILE,
            json.dumps(beat, indent=2, default=str),
        )
        return beat

    def on_event(self) -> None:
        self.events += 1
        self.wake.set()

    def _serve_events(self) -> uvicorn.Server:
        """The HTTP app on the event address, in a thread of its own."""
        app = create_app(
            ensure_admin_token(None),  # the env's token, else the local token file
            self.on_event,
            lambda: read_heartbeat(self.config.model_name) or {},
        )
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=self.config.events_host,
                port=self.config.events_port,
                log_level="warning",
                access_log=False,
            )
        )
        threading.Thread(target=server.run, daemon=True, name="monitor-events").start()
        return server

    def retraining(self) -> bool:
        return self.retrain_pid is not None and alive(self.retrain_pid)

    def check(self) -> None:
        try:
            self.last_decision, plan, pid = check_once(self.config_path, self.warm)
            self.retrain_pid = pid or self.retrain_pid
            if self.last_decision.get("retrain") and not plan.ready:
                logger.warning("decided to retrain, but no retraining starts: %s", plan.reason)
            self.checks += 1
        except Exception as exc:  # e.g. no champion yet: keep watching
            self.failed_checks += 1
            self.last_error = {"at": time.time(), "error": f"{type(exc).__name__}: {exc}"}
            logger.exception("monitoring check failed; watching on")

    def _check_in_worker(self) -> None:
        """Run a check off the main thread, so SIGTERM always reaches our handler.

        ZenML installs its own signal handlers around a run only on the main thread; there
        it would turn our stop request into an interrupted run. A check under way is let
        finish; then the loop sees the stop request. The heartbeat goes on meanwhile: a
        check can outlast the monitor lease, and one that lost it must say so at once.
        """
        worker = threading.Thread(target=self.check, name="monitor-check")
        worker.start()
        while worker.is_alive():
            worker.join(self.config.heartbeat_interval_s)  # a timed join lets signals in
            if worker.is_alive():
                self.heartbeat()

    def _keep_warm(self) -> None:
        """A warm runner waits for the next retraining; the next one starts only once the
        current retraining is over, so its start-up never takes the cores from it."""
        if self.warm is None or self.retraining():
            return
        try:
            self.warm.ensure()
        except OSError:  # the retraining then spawns a runner of its own
            logger.exception("starting a warm retrain runner failed")

    def stop(self, *_args) -> None:
        self.stopping.set()
        self.wake.set()

    def run(self) -> None:
        server = self._serve_events()
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        deadline = None if self.max_seconds is None else time.monotonic() + self.max_seconds
        next_backstop = time.monotonic() + self.config.backstop_interval_s
        logger.info(
            "monitor watching; events on %s:%s", self.config.events_host, self.config.events_port
        )
        pending = False  # events not yet answered by a check
        active = False
        self.claim.start()
        try:
            while not self.stopping.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                pending = self.wake.wait(self.config.heartbeat_interval_s) or pending
                self.wake.clear()  # events from here on ask for one more check
                self.heartbeat()
                if self.stopping.is_set():
                    break
                if not self.claim.holds():
                    active = False  # standing by: another monitor checks
                    if self.warm is not None:  # and launches the retrainings
                        self.warm.stop()
                    continue
                if not active:  # taken over (or first taken): check at once
                    active, pending = True, True
                    self.start_telling()
                    logger.info("monitor active: this one checks now")
                self._keep_warm()  # before the check: warm by the time one plans a retraining
                backstop = time.monotonic() >= next_backstop
                if backstop or (pending and not self.retraining()):
                    pending = False
                    self._check_in_worker()
                    next_backstop = time.monotonic() + self.config.backstop_interval_s
                    self.heartbeat()
                self.tell()
        finally:
            if self.warm is not None:
                self.warm.stop()
            self.claim.stop()
            server.should_exit = True
            logger.info("monitor stopped after %d checks", self.checks)
