"""Registered models and real service processes for the serving tests."""

from __future__ import annotations

import os
import random
import signal
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import psutil
import uvicorn
import yaml
from mlflow.tracking import MlflowClient
from threadpoolctl import threadpool_limits
from zenml.client import Client

from api.app import create_app
from api.settings import ServingConfig, load_serving_config
from tests.support.data import lenient_gates, schema_for
from tests.support.pipelines import BIN, run_command, stack_up
from tests.support.waiting import wait_for
from zenloop.bundle import ModelBundle
from zenloop.config import CandidateConfig, DataConfig, FeatureConfig, SplitConfig
from zenloop.data.loading import load_frame
from zenloop.deployment import VALIDATED_TAG
from zenloop.tracking import CHAMPION, ensure_experiment, log_candidate
from zenloop.training import fit_candidate, split_frame

ADMIN_TOKEN = "test-admin-token"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 60.0
KIB = 1024


# Small, fast, one-thread models: these tests are about serving, not accuracy, and on a
# busy machine thread pools spin on their barriers (see `fit_small`).
SMALL_PARAMS = {
    "xgboost": {"n_estimators": 40, "n_jobs": 1},
    "random_forest": {"n_estimators": 40, "n_jobs": 1},
    "hist_gradient_boosting": {"max_iter": 30},
    "linear": {},
}


def fit_small(family: str, schema, features: FeatureConfig, splits: dict, small: bool = True):
    """Fit one small candidate on one thread (OpenMP included, e.g. HistGradientBoosting).

    With `small=False`, the family's own defaults (what `make demo` trains), as they are.
    """
    if not small:
        candidate = CandidateConfig(name=family, family=family)
        return fit_candidate(candidate, schema, features, lenient_gates(), splits, 0)
    candidate = CandidateConfig(name=family, family=family, params=SMALL_PARAMS[family])
    with threadpool_limits(1):
        return fit_candidate(candidate, schema, features, lenient_gates(), splits, 0)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * KIB
    raise RuntimeError(f"no VmRSS for pid {pid}")


def metric(client: httpx.Client, name: str) -> float:
    """One unlabelled sample of the service's /metrics."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise KeyError(name)


@dataclass
class Registered:
    name: str
    bundles: dict[str, ModelBundle]  # registry version -> bundle
    holdout: pd.DataFrame


def register_models(
    name: str,
    data: DataConfig,
    families: list[str],
    frame: pd.DataFrame | None = None,
    features: FeatureConfig | None = None,
    small: bool = True,
) -> Registered:
    """Train one small model per family and register each; the first becomes champion.

    `frame` replaces the generated data (a user's file), with `data.target` as its target.
    """
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    experiment = ensure_experiment("zenloop-tests", Path(os.environ["ZENLOOP_DATA_DIR"]).as_uri())
    frame = load_frame(data) if frame is None else frame
    features = features or FeatureConfig()
    schema = schema_for(frame, data, features)
    splits = dict(
        zip(("train", "validation", "test"), split_frame(frame, schema, SplitConfig()), strict=True)
    )
    client = MlflowClient()
    bundles = {}
    for family in families:
        bundle, result = fit_small(family, schema, features, splits, small)
        with mlflow.start_run(experiment_id=experiment):
            log_candidate(result, bundle)
        version = mlflow.register_model(result.model_uri, name).version
        bundles[str(version)] = bundle
    champion = min(bundles, key=int)
    client.set_registered_model_alias(name, CHAMPION, champion)
    client.set_model_version_tag(name, champion, VALIDATED_TAG, "test")  # as deployment does
    return Registered(name, bundles, splits["test"].drop(columns=[schema.target]))


# pytest-xdist workers take ports from their own block, below the kernel's ephemeral range,
# so one worker cannot be handed a port the other has just picked but not yet bound
WORKER_PORTS_START, WORKER_PORTS_PER_WORKER, WORKER_PORT_TRIES = 20_000, 3_000, 200


def free_port() -> int:
    """A port nothing listens on now (from this xdist worker's own block, if any)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.removeprefix("gw").isdigit():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    start = WORKER_PORTS_START + int(worker.removeprefix("gw")) * WORKER_PORTS_PER_WORKER
    for _ in range(WORKER_PORT_TRIES):
        port = random.randrange(start, start + WORKER_PORTS_PER_WORKER)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {start}-{start + WORKER_PORTS_PER_WORKER} for {worker}")


class DeployedProcess:
    """The server process of a deployment, by its pid: the deployer started it, not the
    test, so it is watched and signalled as any process of this machine."""

    def __init__(self, pid: int):
        self.pid = pid
        self._process = psutil.Process(pid)

    def poll(self) -> int | None:
        """None while it runs (a zombie has exited), else 0."""
        try:
            running = self._process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            running = False
        return None if running else 0

    def send_signal(self, signum: int) -> None:
        self._process.send_signal(signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float) -> None:
        wait_for(lambda: self.poll() is not None, f"process {self.pid} to end", timeout)


@dataclass
class Service:
    url: str
    process: DeployedProcess
    log_db: Path
    config_path: Path | None = None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        with self.client() as client:
            wait_for(lambda: client.get("/ready").status_code == 200, "/ready", timeout)

    def stop(self) -> None:
        """Deprovision the deployment: SIGTERM, the log drained (or, when the test killed
        it, the deployer forgets it)."""
        from ops.service import stop_all

        if self.config_path is not None:
            stop_all(load_serving_config(self.config_path))
        if self.process.poll() is None:
            self.process.wait(STOP_TIMEOUT_S)


def serving_file(folder: Path, port: int, model_name: str, log_db: Path, **settings) -> Path:
    """A serving config in `folder`: `model_name` on `port`, logging into the SQLite file
    `log_db`; `settings` go into it as they are."""
    config = {
        "port": port,
        "model": {"name": model_name},
        "log": {"database_url": f"sqlite:///{log_db}"},
        **settings,
    }
    path = folder / f"serving-{port}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def running_service(tmp: Path, model_name: str, env: dict[str, str] | None = None, **overrides):
    """The service deployed through the local stack's deployer (`zenloop serve --detach`),
    a real process on 127.0.0.1; `overrides` go into its config."""
    from ops.service import deployment_name, pid_of

    port = free_port()
    log_db = tmp / f"log-{port}.db"
    defaults = {
        "reload_interval_s": 0.5,
        # the session's registry, whatever stack is active (or none)
        "tracking_uri": os.environ["MLFLOW_TRACKING_URI"],
        "max_batch_rows": 50,
    }
    path = serving_file(tmp, port, model_name, log_db, **{**defaults, **overrides})
    env = {**os.environ, "ZENLOOP_ADMIN_TOKEN": ADMIN_TOKEN, **(env or {})}
    stack_up()  # the local stack: its deployer runs the service
    run_command(str(BIN / "zenloop"), "serve", "--detach", "-c", str(path), env=env)
    deployment = Client().get_deployment(deployment_name(load_serving_config(path)))
    service = Service(f"http://127.0.0.1:{port}", DeployedProcess(pid_of(deployment)), log_db, path)
    try:
        with service.client() as client:
            wait_for(lambda: client.get("/health").status_code == 200, "/health", START_TIMEOUT_S)
        yield service
    finally:
        service.stop()


@contextmanager
def in_process_service(config: ServingConfig):
    """The app on a real uvicorn server in a thread of this process, for tests that reach
    inside it (break its log writer, cut its registry). Yields the `Service` and its URL."""
    app = create_app(config)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=config.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, "the in-process server", START_TIMEOUT_S)
        yield app.state.service, f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
