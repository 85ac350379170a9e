"""The README's order of stacks in one ZenML store: the pipelines on `local`, then the same
run configs on the `server` stack, read back through its own servers; then the loop on the
server stack; the dashboard and MLflow UI in a browser.

One real ZenML server and one real MLflow server serve the whole module (set up and torn
down with `zenloop stack up/down server`), in the store the `local` runs used first. Tests
run in file order: the browser test looks at what the loop test left.
"""

import math

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.support.browser import dashboard_walkthrough
from tests.support.loop import LENIENT, drift_retrains_and_serves, loop_environment
from tests.support.pipelines import BIN, run_command, run_config, stack_up
from tests.support.serving import free_port
from tests.support.stacks import ServerStack, isolated_stack, server_stack

MODEL = "portable"
LOOP_MODEL = "server-loop"
TRAINING = {
    "data": {"n_rows": 2500, "seed": 5},
    "candidates": [
        {"name": "xgboost", "family": "xgboost", "params": {"n_estimators": 50}},
        {"name": "linear", "family": "linear"},
    ],
    "gates": {"min_r2": 0.5, "max_gap_pct": None},
    "reference": {"sample_size": 400},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The `local` stack's runs first, then the server stack comes up in the same store."""
    folder = tmp_path_factory.mktemp("server-stack")
    env = isolated_stack(folder, "server").env
    stack_up("local", env)
    (folder / "local").mkdir()
    _run_all_pipelines(folder / "local", env)
    with server_stack(folder) as stack:
        yield stack


def _run_all_pipelines(folder, env) -> None:
    """Train, deploy (to a running service) and monitor, from the same files on any stack."""
    zenloop = str(BIN / "zenloop")
    port = free_port()
    serving = folder / "serving.yaml"
    serving.write_text(
        yaml.safe_dump({"port": port, "model": {"name": MODEL}, "events": {"url": None}, "log": {}})
    )
    deploy = run_config(
        folder / "d.yaml",
        {"model_name": MODEL, "service_url": f"http://127.0.0.1:{port}", "latency_samples": 50},
        MODEL,
        key="deploy",
    )
    monitor = run_config(folder / "m.yaml", {"model_name": MODEL}, MODEL, key="monitor")
    run_command(
        zenloop, "train", "-c", str(run_config(folder / "t.yaml", TRAINING, MODEL)), env=env
    )
    try:
        run_command(zenloop, "deploy", "-c", str(deploy), "--serving-config", str(serving), env=env)
        status = run_command(zenloop, "status", "-c", str(serving), env=env)
        assert f"serving {MODEL} v1" in status.stdout
        checked = run_command(zenloop, "monitor", "-c", str(monitor), env=env)
        assert "monitoring:" in checked.stdout  # an empty window: nothing to compare yet
    finally:
        run_command(zenloop, "serve", "--stop", "-c", str(serving), env=env, check=False)


def _local_champion_metrics(env: dict[str, str]) -> dict[str, float]:
    """From the local stack's MLflow store in the data folder of `env`."""
    client = MlflowClient(f"sqlite:///{env['ZENLOOP_DATA_DIR']}/mlflow.db")
    champion = client.get_model_version_by_alias(MODEL, "champion")
    return {k: v for k, v in client.get_run(champion.run_id).data.metrics.items() if "test" in k}


def _server_champion_metrics(server: ServerStack) -> dict[str, float]:
    """Through the MLflow server's REST API."""
    champion = server.mlflow_api("/registered-models/alias", name=MODEL, alias="champion")
    run = server.mlflow_api("/runs/get", run_id=champion["model_version"]["run_id"])
    return {m["key"]: m["value"] for m in run["run"]["data"]["metrics"] if "test" in m["key"]}


def test_after_local_the_same_pipelines_on_server_give_the_same_champion(server, tmp_path):
    """The local runs' cached training results name runs of the local MLflow store: on the
    server's tracker the training runs again, and promotion registers there."""
    _run_all_pipelines(tmp_path, server.env)

    local, remote = _local_champion_metrics(server.env), _server_champion_metrics(server)
    assert local.keys() == remote.keys() and "test_rmse" in local
    for key, value in local.items():
        assert math.isclose(value, remote[key], rel_tol=1e-9), (key, value, remote[key])

    runs = server.zenml_api("/runs", sort_by="desc:created", size=50)["items"]
    completed = [run["name"] for run in runs if run["body"]["status"] == "completed"]
    for pipeline in ("training", "deployment", "monitoring"):
        assert sum(name.startswith(pipeline) for name in completed) == 2, (pipeline, completed)
    training = next(run for run in runs if run["name"].startswith("training"))
    steps = server.zenml_api("/steps", pipeline_run_id=training["id"], size=50)["items"]
    status = {step["name"]: step["body"]["status"] for step in steps}
    assert status["load_dataset"] == "cached", "the data steps know no tracker"
    assert status["train_candidates"] == "completed", "trained again for this tracker"
    versions = server.zenml_api("/model_versions", size=10, hydrate=True)["items"]
    production = [v for v in versions if v["body"].get("stage") == "production"]
    assert production, "the champion is the ZenML model's production version"
    # the MLflow Python client reads the same server (a client of its own: the session's
    # global tracking URI stays on the local stack's store)
    assert MlflowClient(server.mlflow).get_model_version_by_alias(MODEL, "champion").version == "1"


def test_the_loop_closes_on_the_server_stack(server, tmp_path):
    with loop_environment(tmp_path, LOOP_MODEL, LENIENT, server.env) as loop:
        drift_retrains_and_serves(loop)


def test_the_dashboard_and_mlflow_ui_show_runs_reports_and_the_champion(server, tmp_path):
    shown = dashboard_walkthrough(server.dashboard, server.mlflow, LOOP_MODEL)
    assert "Candidates" in shown["candidate_board"] and "xgboost" in shown["candidate_board"]
    header = shown["drift_report_header"].lower()
    assert "column" in header and "threshold" in header
    assert "DRIFT" in shown["drift_report"]
    assert LOOP_MODEL in shown["mlflow_model"] and "champion" in shown["mlflow_model"]
