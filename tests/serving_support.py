"""Registered models and real service processes for the serving tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import yaml
from mlflow.tracking import MlflowClient

from tests.helpers import lenient_gates, schema_for
from zenloop.bundle import ModelBundle
from zenloop.config import CandidateConfig, DataConfig, FeatureConfig, SplitConfig
from zenloop.data.loading import load_frame
from zenloop.deployment import VALIDATED_TAG
from zenloop.tracking import CHAMPION, ensure_experiment, log_candidate
from zenloop.training import fit_candidate, split_frame

ADMIN_TOKEN = "test-admin-token"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 60.0


@dataclass
class Registered:
    name: str
    bundles: dict[str, ModelBundle]  # registry version -> bundle
    holdout: pd.DataFrame


def register_models(name: str, data: DataConfig, families: list[str]) -> Registered:
    """Train one small model per family and register each; the first becomes champion."""
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    experiment = ensure_experiment("zenloop-tests", Path(os.environ["ZENLOOP_DATA_DIR"]).as_uri())
    frame = load_frame(data)
    schema = schema_for(frame, data)
    splits = dict(
        zip(("train", "validation", "test"), split_frame(frame, schema, SplitConfig()), strict=True)
    )
    client = MlflowClient()
    bundles = {}
    for family in families:
        candidate = CandidateConfig(
            name=family, family=family, params={"n_estimators": 40} if family != "linear" else {}
        )
        bundle, result = fit_candidate(
            candidate, schema, FeatureConfig(), lenient_gates(), splits, 0
        )
        with mlflow.start_run(experiment_id=experiment):
            log_candidate(result, bundle)
        version = mlflow.register_model(result.model_uri, name).version
        bundles[str(version)] = bundle
    champion = min(bundles, key=int)
    client.set_registered_model_alias(name, CHAMPION, champion)
    client.set_model_version_tag(name, champion, VALIDATED_TAG, "test")  # as deployment does
    return Registered(name, bundles, splits["test"].drop(columns=[schema.target]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Service:
    url: str
    process: subprocess.Popen
    log_db: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(STOP_TIMEOUT_S)


@contextmanager
def running_service(tmp: Path, model_name: str, **overrides):
    port = free_port()
    log_db = tmp / f"log-{port}.db"
    config = {
        "port": port,
        "model": {"name": model_name},
        "reload_interval_s": 0.5,
        "max_batch_rows": 50,
        "log": {"database_url": f"sqlite:///{log_db}"},
        **overrides,
    }
    path = tmp / f"serving-{port}.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "ZENLOOP_ADMIN_TOKEN": ADMIN_TOKEN}
    output = (tmp / f"serve-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "serve", "-c", str(path)],
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    service = Service(f"http://127.0.0.1:{port}", process, log_db)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp / f"serve-{port}.log").read_text()[-3000:]
            try:
                if httpx.get(service.url + "/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("service did not start")
        yield service
    finally:
        service.stop()
        output.close()
