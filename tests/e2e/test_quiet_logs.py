"""A train and a deploy on the local stack say nothing that does not apply (issue: noisy
logs), and the service's log file has no colour codes even when colours were asked for."""

import os
import re
from pathlib import Path

from tests.support.pipelines import BIN, run_command, run_config, stack_up
from tests.support.serving import free_port, serving_file

MODEL = "quiet-tests"
TRAINING = {
    "data": {"n_rows": 2000, "seed": 5},
    "candidates": [{"name": "linear", "family": "linear"}],
    "gates": {"min_r2": 0.5, "max_gap_pct": None},
    "reference": {"sample_size": 200},
}
# ZenML 0.98's words for the three messages that never apply to zenloop's local runs
NOT_APPLICABLE = (
    "You are specifying docker settings but no component in your stack makes use of them",
    "Failed to disable MLflow autologging",
    "Sign up for a free trial at https://www.zenml.io/pro/",
    "In order to try it locally, please run",
)
ESC = "\x1b["
COLOUR_CODE = re.compile(r"\x1b\[[0-9;]*m")


def _coloured_env() -> dict[str, str]:
    """This session's stores, with colours as a user's terminal would have them."""
    env = {k: v for k, v in os.environ.items() if k not in ("ZENML_LOGGING_COLORS_DISABLED",)}
    return env | {"TERM": "xterm-256color"}


def _said(result) -> str:
    """What a command wrote, as words: ZenML colours the parts of a line between backticks,
    or, with colours off (output into a pipe, as here), keeps the backticks."""
    return COLOUR_CODE.sub("", result.stdout + result.stderr).replace("`", "")


def _daemon_log(name: str) -> str:
    """The local deployer's log file of deployment `name`."""
    folder = Path(os.environ["ZENML_CONFIG_PATH"]) / "deployments"
    for log in folder.glob("*/daemon.log"):
        text = log.read_text(errors="replace")
        if f"Deployment Name: {name}" in text:
            return text
    raise AssertionError(f"no daemon.log of {name} in {folder}")


def test_train_and_deploy_say_only_what_applies(tmp_path):
    stack_up()
    env = _coloured_env()
    train = run_command(
        str(BIN / "zenloop"),
        "train",
        "-c",
        str(run_config(tmp_path / "t.yaml", TRAINING, MODEL)),
        env=env,
    )
    assert "Step train_candidates has finished" in _said(train)
    assert "Downloading artifacts" not in _said(train), "no progress bars into a pipe"
    for message in NOT_APPLICABLE:
        assert message not in _said(train), message

    port = free_port()
    serving = serving_file(tmp_path, port, MODEL, tmp_path / "log.db")
    deploy = {"model_name": MODEL, "service_url": f"http://127.0.0.1:{port}", "latency_samples": 20}
    try:
        deployed = run_command(
            str(BIN / "zenloop"),
            "deploy",
            "-c",
            str(run_config(tmp_path / "d.yaml", deploy, MODEL, key="deploy")),
            "--serving-config",
            str(serving),
            env=env,
        )
        assert "service deployed" in _said(deployed)
        for message in NOT_APPLICABLE:
            assert message not in _said(deployed), message
        service_log = _daemon_log(f"{MODEL}-{port}")
        assert "Uvicorn running" in service_log
        assert ESC not in service_log, service_log[:500]
    finally:
        run_command(str(BIN / "zenloop"), "serve", "--stop", "-c", str(serving), check=False)
