"""The README's order of stacks in one ZenML store: the pipelines on `local`, then the same
run configs on the `server` stack, read back through its own servers; then the loop on the
server stack; the dashboard and MLflow UI in a browser.

One real ZenML server and one real MLflow server serve the whole module (set up and torn
down with `zenloop stack up/down server`), in the store the `local` runs used first. Tests
run in file order: the browser test looks at what the loop test left.
"""

import json
import math
from secrets import token_hex as secrets_token_hex

import httpx
import pytest
import yaml
from mlflow.tracking import MlflowClient

from ops.stacks import load_stack_file
from tests.support.browser import dashboard_walkthrough, deployment_pages
from tests.support.loop import LENIENT, TARGET, drift_retrains_and_serves, loop_environment, orders
from tests.support.pipelines import BIN, run_command, run_config, stack_up
from tests.support.serving import free_port
from tests.support.stacks import ServerStack, isolated_stack, server_stack
from tests.support.waiting import wait_for
from zenloop.deployment import request_rows

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


def test_the_service_is_a_zenml_deployment_the_cli_and_the_dashboard_show(server, tmp_path):
    """Deployed with `zenloop serve --detach` on the server stack: ZenML lists it, invokes
    it, shows its log and its dashboard pages, and it serves the loop's champion."""
    port = free_port()
    serving = tmp_path / "serving.yaml"
    serving.write_text(yaml.safe_dump({"port": port, "model": {"name": LOOP_MODEL}}))
    name, url = f"{LOOP_MODEL}-{port}", f"http://127.0.0.1:{port}"
    zenloop, zenml = str(BIN / "zenloop"), str(BIN / "zenml")
    run_command(zenloop, "serve", "--detach", "-c", str(serving), env=server.env)
    try:
        ready = wait_for(
            lambda: (r := httpx.get(f"{url}/ready")).status_code == 200 and r.json(), "/ready", 60
        )
        listed = run_command(
            zenml,
            "deployment",
            "list",
            "--columns",
            "name,status,url,tags",
            env=server.env | {"COLUMNS": "240"},  # rich cuts a URL to fit 80 columns
        ).stdout
        assert name in listed and "RUNNING" in listed and url in listed, listed

        def tags() -> list[str]:
            (found,) = server.zenml_api("/deployments", name=name, hydrate=True)["items"]
            return [tag["name"] for tag in found["resources"]["tags"]]

        serving_tag = f"serving:{LOOP_MODEL}:v{ready['model_version']}"
        wait_for(lambda: serving_tag in tags(), "the deployment tagged with what serves", 30)
        row = orders(3, 31).drop(columns=TARGET)
        rows = request_rows(row)
        served = httpx.post(f"{url}/predict_batch", json={"rows": rows}).json()["predictions"]
        result = run_command(
            zenml, "deployment", "invoke", name, f"--rows={json.dumps(rows)}", env=server.env
        )
        invoked = result.stdout + result.stderr  # ZenML's CLI writes its answer to stderr
        answer, _ = json.JSONDecoder().raw_decode(invoked[invoked.index("{") :])
        if not answer["success"]:  # the failing step's error is in the service's log
            log = run_command(zenml, "deployment", "logs", name, env=server.env)
            raise AssertionError(answer["error"] + (log.stdout + log.stderr)[-6000:])
        predicted = [p["prediction"] for p in answer["outputs"]["predictions"]]
        assert predicted == pytest.approx([p["prediction"] for p in served])
        logged = run_command(zenml, "deployment", "logs", name, env=server.env)
        logs = logged.stdout + logged.stderr  # where ZenML's CLI writes depends on its logging
        assert "Application startup complete" in logs, logs[-2000:]
        (deployment,) = server.zenml_api("/deployments", name=name)["items"]
        shown = deployment_pages(server.dashboard, name, deployment["id"])
        assert name in shown["list"] and "Running" in shown["list"], shown["list"]
        assert url in shown["deployment"] and "inference_pipeline" in shown["deployment"]
    finally:
        run_command(zenloop, "serve", "--stop", "-c", str(serving), env=server.env, check=False)


def test_the_dashboard_and_mlflow_ui_show_runs_reports_and_the_champion(server, tmp_path):
    shown = dashboard_walkthrough(server.dashboard, server.mlflow, LOOP_MODEL)
    assert "Candidates" in shown["candidate_board"] and "xgboost" in shown["candidate_board"]
    header = shown["drift_report_header"].lower()
    assert "column" in header and "threshold" in header
    assert "DRIFT" in shown["drift_report"]
    assert LOOP_MODEL in shown["mlflow_model"] and "champion" in shown["mlflow_model"]


REMOTE_IMAGE = "123456789012.dkr.ecr.eu-central-1.amazonaws.com/zenloop:rendered"
TRAIN_POD = {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "8Gi"}}
REMOTE_SECRETS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "ZENLOOP_MLFLOW_USERNAME",
    "ZENLOOP_MLFLOW_PASSWORD",
    "ZENLOOP_LOG_DATABASE_URL",
    "ZENLOOP_ADMIN_TOKEN",
)


def _kubeconfig(path, port: int):
    """A context named as the remote stack's, for a cluster that is not there."""
    cluster = {"name": "absent", "cluster": {"server": f"https://127.0.0.1:{port}"}}
    context = {"name": "zenloop-production", "context": {"cluster": "absent", "user": "ci"}}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "ci", "user": {"token": "unused"}}],
                "contexts": [context],
                "current-context": "zenloop-production",
            }
        )
    )
    return path


def test_the_remote_stacks_step_pods_render_without_a_cluster(server, tmp_path):
    """The team's stack registered on this ZenML server, nothing started or contacted: each
    training step's Job as ZenML's orchestrator pod would submit it. Last in the module: it
    leaves `remote` active."""
    secrets = {name: f"{name.lower()}-{secrets_token_hex(8)}" for name in REMOTE_SECRETS}
    env = {
        **server.env,
        **secrets,
        "KUBECONFIG": str(_kubeconfig(tmp_path / "kubeconfig", free_port())),
    }
    zenloop = str(BIN / "zenloop")
    up = run_command(zenloop, "stack", "up", "remote", "--register-only", env=env)
    assert "registered stack remote" in up.stdout and "nothing was started" in up.stdout
    config = run_config(tmp_path / "t.yaml", TRAINING, MODEL)
    content = yaml.safe_load(config.read_text())
    content["steps"] = {
        "train_candidates": {
            "settings": {"orchestrator.kubernetes": {"pod_settings": {"resources": TRAIN_POD}}}
        }
    }
    config.write_text(yaml.safe_dump(content))
    out = tmp_path / "jobs"
    rendered = run_command(
        *(zenloop, "stack", "manifests", "training", "-c", str(config)),
        *("--image", REMOTE_IMAGE, "-o", str(out)),
        env=env,
    )
    jobs = {path.stem: yaml.safe_load(path.read_text()) for path in out.glob("*.yaml")}
    training = server.zenml_api("/runs", sort_by="desc:created", size=50)["items"]
    trained = next(run for run in training if run["name"].startswith("training"))
    steps = server.zenml_api("/steps", pipeline_run_id=trained["id"], size=50)["items"]
    assert f"wrote {len(steps)} Job manifests" in rendered.stdout, rendered.stdout
    assert set(jobs) == {step["name"] for step in steps}, "a Job for every step of the pipeline"

    orchestrator = load_stack_file("remote").components["orchestrator"].configuration
    every_pod = orchestrator["pod_settings"]["resources"]
    snapshots = set()
    for step_name, job in jobs.items():
        assert job["kind"] == "Job" and job["metadata"]["namespace"] == "zenloop"
        assert job["metadata"]["annotations"]["zenml.io/step-name"] == step_name
        pod = job["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        (container,) = pod["containers"]
        assert container["image"] == REMOTE_IMAGE
        assert container["command"] == ["python", "-m", "zenml.entrypoints.entrypoint"]
        args = container["args"]
        assert args[args.index("--step_name") + 1] == step_name
        snapshots.add(args[args.index("--snapshot_id") + 1])
        variables = {variable["name"]: variable for variable in container["env"]}
        assert variables["ZENML_STORE_URL"]["value"] == server.dashboard, "pods reach the server"
        token = variables["ZENML_STORE_API_TOKEN"]["valueFrom"]["secretKeyRef"]
        assert token["name"].startswith("zenml-token-"), "the token is a Kubernetes Secret"
        wanted = TRAIN_POD if step_name == "train_candidates" else every_pod
        assert container["resources"] == wanted, step_name
    (snapshot_id,) = snapshots
    assert (
        server.zenml_api(f"/pipeline_snapshots/{snapshot_id}")["name"]
        == "training_pipeline-manifests"
    )
    text = "\n".join(path.read_text() for path in out.glob("*.yaml"))
    leaked = [name for name, value in secrets.items() if value in text]
    assert not leaked, f"secret values in the pod specs: {leaked}"

    # the prediction service on the same stack: the resources its Kubernetes deployer
    # would apply, from a serving config that listens on the pod's address
    serving = tmp_path / "serving.yaml"
    serving.write_text(yaml.safe_dump({"host": "0.0.0.0", "port": 8000, "model": {"name": MODEL}}))
    service = run_command(
        *(zenloop, "stack", "manifests", "service", "-c", str(serving)),
        *("--image", REMOTE_IMAGE, "-o", str(tmp_path / "service")),
        env=env,
    )
    assert "wrote the service's resources" in service.stdout, service.stdout
    text = (tmp_path / "service" / "service.yaml").read_text()
    resources = {doc["kind"]: doc for doc in yaml.safe_load_all(text)}
    assert {"Namespace", "Deployment", "Service"} <= set(resources), sorted(resources)
    deployment = resources["Deployment"]
    assert deployment["metadata"]["namespace"] == "zenloop"
    assert deployment["metadata"]["labels"]["zenml-deployment-name"].startswith(f"{MODEL}-8000")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == REMOTE_IMAGE
    assert container["command"] == ["python", "-m", "zenml.entrypoints.entrypoint"]
    assert "--deployment_id" in container["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert resources["Service"]["spec"]["type"] == "ClusterIP"
    assert resources["Service"]["spec"]["ports"][0]["port"] == 8000
    leaked = [name for name, value in secrets.items() if value in text]
    assert not leaked, f"secret values in the service's resources: {leaked}"
