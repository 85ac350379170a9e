"""Many models' loops in one data folder: each monitor's files under its model's folder,
`loops_here` finds every loop, and `monitor --stop` stops the right ones (real processes
standing in for monitors, real pid files)."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from api.settings import ServingConfig
from ops.cli.monitor import monitor
from ops.loops import loops_here
from ops.monitor_service import HEARTBEAT_FILE, monitor_dir, monitor_process
from ops.service import write_run_config
from zenloop.pids import alive

IDLE_S = "120"  # how long a stand-in monitor lives unless stopped
CLI_TIMEOUT_S = 120


@pytest.fixture()
def data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("ZENLOOP_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _monitor(model: str, serving_path=None) -> subprocess.Popen:
    """A process with the model's monitor pid file and a heartbeat, as `--watch` leaves."""
    process = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({IDLE_S})"])
    monitor_process(model).pid_file.write_text(str(process.pid))
    beat = {"model": model, "pid": process.pid, "serving_config": serving_path, "checks": 0}
    (monitor_dir(model) / HEARTBEAT_FILE).write_text(json.dumps(beat))
    return process


def test_each_models_monitor_has_its_own_files(data_folder):
    assert monitor_process("houses").pid_file.parent == data_folder / "houses" / "monitor"
    assert monitor_process("churn").log_file == data_folder / "churn" / "monitor.log"


def test_loops_here_joins_deployed_services_and_monitors_by_model(data_folder, tmp_path):
    write_run_config(ServingConfig.model_validate({"port": 8001, "model": {"name": "houses"}}))
    serving = tmp_path / "churn-serving.yaml"
    serving.write_text("port: 8002\nmodel:\n  name: churn\n")
    processes = [_monitor("churn", str(serving)), _monitor("houses")]
    try:
        loops = {loop.model: loop for loop in loops_here()}
        assert set(loops) == {"churn", "houses"}
        assert loops["houses"].serving.port == 8001, "from its deployment's run config"
        assert loops["churn"].serving.port == 8002, "from the config its monitor named"
        assert loops["churn"].heartbeat["pid"] == processes[0].pid
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_stop_without_a_config_stops_the_only_monitor_and_refuses_to_guess_among_several(
    data_folder,
):
    runner = CliRunner()
    first = _monitor("houses")
    stopped = runner.invoke(monitor, ["--stop"])
    assert stopped.exit_code == 0 and "stopped the monitor of houses" in stopped.output
    first.wait(timeout=30)
    processes = [_monitor("houses"), _monitor("churn")]
    try:
        refused = runner.invoke(monitor, ["--stop"])
        assert refused.exit_code == 1, refused.output
        assert "several monitors run here" in refused.output
        assert "houses" in refused.output and "churn" in refused.output
        assert all(alive(p.pid) for p in processes), "it stopped none"
        every = runner.invoke(monitor, ["--stop", "--all"])
        assert every.exit_code == 0, every.output
        for process in processes:
            process.wait(timeout=30)
        assert "stopped the monitor of churn" in every.output
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_status_json_is_alone_on_stdout_while_zenml_logs(data_folder):
    """ZenML's console logs go to stdout (a config file reloaded because another loop's
    command wrote it; anything at DEBUG): with --json they go to stderr, so a script can
    parse stdout."""
    env = {**os.environ, "ZENML_LOGGING_VERBOSITY": "DEBUG"}
    shown = subprocess.run(
        [sys.executable, "-m", "ops.cli", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    assert json.loads(shown.stdout) == {"loops": []}
    assert "DEBUG" in shown.stderr, "ZenML's logs are kept, on stderr"


def test_a_command_into_a_pipe_writes_zenml_logs_without_colour(data_folder):
    """`zenloop demo > demo.log` as a user would: ZenML colours its log lines unless told
    not to, and a file is no terminal."""
    coloured = {k: v for k, v in os.environ.items() if k != "ZENML_LOGGING_COLORS_DISABLED"}
    env = coloured | {"ZENML_LOGGING_VERBOSITY": "DEBUG", "TERM": "xterm-256color"}
    shown = subprocess.run(
        [sys.executable, "-m", "ops.cli", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    said = shown.stdout + shown.stderr
    assert "DEBUG" in said, said
    assert "\x1b[" not in said, said
