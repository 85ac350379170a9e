"""A retraining goes to the warm runner the monitor started ahead; without one, a fresh one.

The runners here are real processes that wait for their job as `zenloop retrain --warm`
does (`wait_for_job`), without its start-up: the hand-over, the fallback and the stopping
are what is tested. One test starts the real command, to see it get warm and stop.
"""

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from ops import retrain_runner, warm_runner
from ops.warm_runner import WarmRunner
from tests.support.waiting import wait_for
from zenloop.paths import DATA_DIR_ENV
from zenloop.pids import alive

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 20.0
REAL_START_S = 180.0  # the real runner imports zenml, mlflow and the models: slow when busy
CONFIG = ROOT / "configs" / "monitoring.yaml"  # the shipped one: its model names the folder
MODEL = "zenloop"  # CONFIG's model
STARTING_S = 1.0  # well within WARMING_WAIT_S
# waits as the real runner does, and writes the job it was handed where the test reads it
FAKE_RUNNER = """
import json, sys, time
from pathlib import Path
from ops import warm_runner
from zenloop.config import load_monitor_config
time.sleep(float(sys.argv[2]))  # its start-up
parent = int(sys.argv[sys.argv.index("--parent") + 1])
model = load_monitor_config(sys.argv[sys.argv.index("-c") + 1]).model_name
job = warm_runner.wait_for_job(parent, model, max_idle_s=60)
out = Path(sys.argv[1])
out.write_text(json.dumps(job and [job.monitoring_run_id, str(job.monitor_config)]))
warm_runner.finish(model)
"""


@pytest.fixture
def data(monkeypatch, tmp_path) -> Path:
    """This test's own data folder, and children that import this checkout."""
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    return tmp_path / "data"


def _fake(monkeypatch, tmp_path, start_s: float) -> Path:
    """`zenloop retrain --warm` is the fake runner, which takes `start_s` to start; returns
    where it writes its job."""
    script, out = tmp_path / "runner.py", tmp_path / "job.json"
    script.write_text(FAKE_RUNNER)
    command = [sys.executable, str(script), str(out), str(start_s)]
    monkeypatch.setattr(warm_runner, "zenloop_command", lambda *args: [*command, *args])
    return out


@pytest.fixture
def fake_runner(monkeypatch, tmp_path) -> Path:
    return _fake(monkeypatch, tmp_path, 0.0)


@pytest.fixture
def spawned(monkeypatch) -> list[list[str]]:
    """Fresh runners are recorded, not started."""
    commands: list[list[str]] = []

    def spawn(command: list[str], _log: Path) -> int:
        commands.append(command)
        return -1

    monkeypatch.setattr(retrain_runner, "spawn", spawn)
    return commands


def _warm(runner: WarmRunner) -> int:
    pid = runner.ensure()
    assert pid is not None
    wait_for(runner.ready, "the runner to be warm", WAIT_S)
    return pid


def test_a_retraining_goes_to_the_warm_runner(data, fake_runner, spawned):
    runner = WarmRunner(CONFIG, MODEL)
    warm_pid = _warm(runner)
    try:
        pid = retrain_runner.launch("run-1", CONFIG, runner)
        assert pid == warm_pid  # the retraining runs in the process started ahead
        assert spawned == []
        wait_for(fake_runner.exists, "the runner to report its job", WAIT_S)
        assert json.loads(fake_runner.read_text()) == ["run-1", str(CONFIG)]
        assert runner.pid is None  # handed over: no longer the monitor's to stop
        assert runner.ensure() not in (None, warm_pid)  # the next one starts
    finally:
        runner.stop()
    wait_for(lambda: not alive(warm_pid), "the handed runner to finish", WAIT_S)


def test_a_dead_warm_runner_falls_back_to_a_fresh_runner(data, fake_runner, spawned):
    runner = WarmRunner(CONFIG, MODEL)
    warm_pid = _warm(runner)
    os.kill(warm_pid, signal.SIGKILL)
    wait_for(lambda: not alive(warm_pid), "the runner to die", WAIT_S)
    pid = retrain_runner.launch("run-2", CONFIG, runner)
    assert pid == -1 and spawned[0][-4:] == ["--run", "run-2", "-c", str(CONFIG)]
    assert not fake_runner.exists()


def test_a_runner_still_starting_is_waited_for(data, monkeypatch, tmp_path, spawned):
    out = _fake(monkeypatch, tmp_path, STARTING_S)
    runner = WarmRunner(CONFIG, MODEL)
    warm_pid = runner.ensure()
    assert not runner.ready()
    assert retrain_runner.launch("run-4", CONFIG, runner) == warm_pid
    assert spawned == []
    wait_for(out.exists, "the runner to report its job", WAIT_S)
    wait_for(lambda: not alive(warm_pid), "the handed runner to finish", WAIT_S)


def test_a_job_not_taken_in_time_is_withdrawn_and_runs_fresh(data, monkeypatch, spawned):
    """A runner that says it is warm but does not take its job: the job is withdrawn (it
    can never run twice), the runner stopped and a fresh one spawned."""
    monkeypatch.setattr(warm_runner, "TAKE_TIMEOUT_S", 0.2)
    monkeypatch.setattr(
        warm_runner,
        "zenloop_command",
        lambda *_: [sys.executable, "-c", "import time; time.sleep(60)"],
    )
    runner = WarmRunner(CONFIG, MODEL)
    stuck = runner.ensure()
    (warm_runner.warm_dir(MODEL) / f"{stuck}.ready").write_text("now")
    assert retrain_runner.launch("run-3", CONFIG, runner) == -1
    assert not (warm_runner.warm_dir(MODEL) / f"{stuck}.job").exists()
    wait_for(lambda: not alive(stuck), "the stuck runner to be stopped", WAIT_S)


def test_an_unused_warm_runner_stops_with_its_monitor(data, fake_runner):
    runner = WarmRunner(CONFIG, MODEL)
    pid = _warm(runner)
    runner.stop()
    assert not alive(pid)
    assert list(warm_runner.warm_dir(MODEL).glob(f"{pid}.*")) == []  # nothing left behind


def test_each_models_runners_hand_over_in_its_own_folder(data):
    """Many models' monitors in one data folder: each one's warm runners, their logs and
    jobs are under its model's folder, beside its retrainings' logs."""
    assert warm_runner.warm_dir("houses") == data / "houses" / "retrains" / "warm"


def test_a_warm_runner_whose_monitor_is_gone_exits(data):
    gone = os.fork()
    if gone == 0:
        os._exit(0)
    os.waitpid(gone, 0)
    assert warm_runner.wait_for_job(gone, MODEL, max_idle_s=WAIT_S) is None


def test_runners_that_never_get_warm_are_given_up(data, monkeypatch):
    monkeypatch.setattr(warm_runner, "zenloop_command", lambda *_: [sys.executable, "-c", "0"])
    runner = WarmRunner(CONFIG, MODEL)
    for _ in range(warm_runner.MAX_FAILED_STARTS):
        pid = runner.ensure()
        wait_for(lambda pid=pid: not alive(pid), "the runner to exit", WAIT_S)
    assert runner.ensure() is None  # retrainings spawn fresh runners from now on


def test_the_real_warm_runner_gets_warm_and_stops(data):
    runner = WarmRunner(CONFIG, MODEL)
    pid = runner.ensure()
    log = warm_runner.warm_dir(MODEL) / f"{pid}.log"
    try:
        wait_for(runner.ready, "`zenloop retrain --warm` to be warm", REAL_START_S)
        wait_for(lambda: f"pid {pid}: ready" in log.read_text(), "its log line", WAIT_S)
    finally:
        runner.stop()
    assert not alive(pid)
