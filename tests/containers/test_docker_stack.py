"""The pipelines on the `docker` stack, every step in its own container: after runs on the
`local` and `server` stacks in the same store, training reuses what the server trained and
promotes in its registry; and the loop closes.

The stack is set up with `zenloop stack up docker` (a ZenML server, an MLflow server, the
local Docker orchestrator and image builder) in stores of its own; the image comes from the
session's shared build, so ZenML's build only adds the code layer.
"""

import json
import math
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from mlflow.tracking import MlflowClient

from monitoring.log_store import PredictionLogStore
from tests.support.containers import docker_stack, project_image  # noqa: F401  (fixture)
from tests.support.loop import LENIENT, TARGET, drift_retrains_and_serves, loop_environment, orders
from tests.support.pipelines import BIN, run_command, run_config, stack_up
from tests.support.serving import free_port, serving_file
from tests.support.stacks import ServerStack
from tests.support.waiting import wait_for
from zenloop.deployment import request_rows

MODEL = "containers"
LOOP_MODEL = "containers-loop"
# each awaited outcome: a monitoring or training run starts a container per step; beside
# the other test worker, a retraining in containers (training and deployment runs, image
# builds included) took about 9 minutes
LOOP_WAIT_S = 1200.0
PIPELINES = ("monitoring", "training", "deployment")
TRAINING = {
    "data": {"n_rows": 2000, "seed": 7},
    "candidates": [
        {"name": "xgboost", "family": "xgboost", "params": {"n_estimators": 40}},
        {"name": "linear", "family": "linear"},
    ],
    "gates": {"min_r2": 0.5, "max_gap_pct": None},
    "reference": {"sample_size": 300},
}
CONTAINER_RUN_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def docker(project_image, tmp_path_factory):  # noqa: F811
    before = _container_ids()
    with docker_stack(tmp_path_factory.mktemp("docker-stack")) as stack:
        yield stack
    # a check the monitor started just before it stopped may finish after a test's own
    # clean-up: whatever step containers this module made go with it
    leftovers = [c["ID"] for c in _new_step_containers(before)]
    if leftovers:
        subprocess.run(["docker", "rm", "-f", *leftovers], capture_output=True)


def _container_ids() -> set[str]:
    listed = subprocess.run(
        ["docker", "ps", "-a", "-q", "--no-trunc"], capture_output=True, text=True, check=True
    )
    return set(listed.stdout.split())


def _new_step_containers(before: set[str]) -> list[dict]:
    """Containers of ZenML's pipeline images that did not exist before the run.

    The image a container was created from is read from its own config: a later build
    moves the `zenml:` tag, and `docker ps` then shows a bare image id.
    """
    new = sorted(_container_ids() - before)
    if not new:
        return []
    fields = '{"ID": {{json .Id}}, "Image": {{json .Config.Image}}, "State": {{json .State}}}'
    listed = subprocess.run(
        ["docker", "inspect", "--format", fields, *new], capture_output=True, text=True, check=True
    ).stdout
    rows = [json.loads(line) for line in listed.splitlines() if line.strip()]
    return [r for r in rows if r["Image"].startswith("zenml:")]


def _champion_metrics(api) -> dict[str, float]:
    champion = api("/registered-models/alias", name=MODEL, alias="champion")
    run = api("/runs/get", run_id=champion["model_version"]["run_id"])
    return {m["key"]: m["value"] for m in run["run"]["data"]["metrics"] if "test" in m["key"]}


def test_after_local_and_server_the_training_runs_in_containers_in_the_same_store(
    docker: ServerStack, tmp_path
):
    """The README's order of stacks in one ZenML store: `local`, `server`, then `docker`.
    What the server run trained (on the same MLflow server) is reused, the rest of the
    steps run in containers, and promotion registers in the server's registry."""
    zenloop = str(BIN / "zenloop")
    config = run_config(tmp_path / "training.yaml", TRAINING, MODEL)
    for stack in ("local", "server"):
        stack_up(stack, docker.env)
        run_command(zenloop, "train", "-c", str(config), env=docker.env)
    stack_up("docker", docker.env)

    before = _container_ids()
    started = time.monotonic()
    result = subprocess.run(
        [zenloop, "train", "-c", str(config)],
        capture_output=True,
        text=True,
        env=docker.env,
        timeout=CONTAINER_RUN_TIMEOUT_S,
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    print(f"containerised training run after the server's: {time.monotonic() - started:.0f}s")

    runs = docker.zenml_api("/runs", sort_by="desc:created", size=5, hydrate=True)["items"]
    training = next(r for r in runs if r["name"].startswith("training"))
    assert training["body"]["status"] == "completed"
    steps = docker.zenml_api("/steps", pipeline_run_id=training["id"], size=50)["items"]
    status = {step["name"]: step["body"]["status"] for step in steps}
    assert status["train_candidates"] == "cached", "the same MLflow server: its runs are reused"
    assert status["promote_candidate"] == "completed"
    containers = _new_step_containers(before)
    images = {c["Image"] for c in containers}
    # the local Docker orchestrator starts every step's container; a cached one finds its
    # result there and ends
    assert len(containers) == len(steps), (len(containers), status)
    states = [(c["State"]["Status"], c["State"]["ExitCode"]) for c in containers]
    assert all(state == ("exited", 0) for state in states), states
    assert images and all("training" in image for image in images), images

    # the server run's champion stays (the same data ties); the docker run registered v2
    local_store = MlflowClient(f"sqlite:///{docker.env['ZENLOOP_DATA_DIR']}/mlflow.db")
    local_champion = local_store.get_model_version_by_alias(MODEL, "champion")
    local = {
        k: v
        for k, v in local_store.get_run(local_champion.run_id).data.metrics.items()
        if "test" in k
    }
    served = _champion_metrics(docker.mlflow_api)
    assert local.keys() == served.keys() and "test_rmse" in local
    for key, value in local.items():
        assert math.isclose(value, served[key], rel_tol=1e-9), (key, value)
    registered = docker.mlflow_api("/model-versions/get", name=MODEL, version="2")
    assert registered["model_version"]["version"] == "2"
    subprocess.run(["docker", "rm", *[c["ID"] for c in containers]], capture_output=True)


def test_the_loop_closes_with_every_step_in_a_container(docker: ServerStack, tmp_path):
    """Drift -> monitoring runs -> a retraining -> a deployment run -> the service swaps."""
    before = _container_ids()
    started = time.monotonic()
    data = Path(docker.env["ZENLOOP_DATA_DIR"]) / "loop"  # step containers see the data folder
    data.mkdir(parents=True, exist_ok=True)
    # the first champion on the server stack (the same servers, steps in process): the
    # loop's own runs are what must run in containers; one drifted window is enough
    with loop_environment(
        tmp_path,
        LOOP_MODEL,
        LENIENT,
        docker.env,
        LOOP_WAIT_S,
        data,
        champion_stack=("server", "docker"),
        consecutive_windows=1,
    ) as loop:
        drift_retrains_and_serves(loop)
    print(f"loop on the docker stack: {time.monotonic() - started:.0f}s")

    runs = docker.zenml_api("/runs", sort_by="desc:created", size=100)["items"]
    completed = [r["name"] for r in runs if r["body"]["status"] == "completed"]
    for pipeline in PIPELINES:
        assert any(name.startswith(pipeline) for name in completed), (pipeline, completed)
    assert any(name.startswith("retrain-after-monitoring") for name in completed), completed
    containers = _new_step_containers(before)
    images = {c["Image"] for c in containers}
    for pipeline in PIPELINES:
        assert any(pipeline in image for image in images), (pipeline, images)
    subprocess.run(["docker", "rm", *[c["ID"] for c in containers]], capture_output=True)


def test_the_service_runs_in_a_container_of_the_project_image(docker: ServerStack, tmp_path):
    """`zenloop serve --detach` on the docker stack: the stack's deployer runs the service in
    a container of the project's image, on the host network at the serving config's port,
    serving the loop's champion from the MLflow server and logging into the data folder."""
    port = free_port()
    data = Path(docker.env["ZENLOOP_DATA_DIR"])
    serving = serving_file(
        tmp_path, port, LOOP_MODEL, data / "service-in-a-container.db", events={"url": None}
    )
    zenloop, name = str(BIN / "zenloop"), f"{LOOP_MODEL}-{port}"
    url = f"http://127.0.0.1:{port}"
    stack_up("docker", docker.env)
    before = _container_ids()
    run_command(zenloop, "serve", "--detach", "-c", str(serving), env=docker.env)
    try:
        new = sorted(_container_ids() - before)
        fields = '{"Image": {{json .Config.Image}}, "Network": {{json .HostConfig.NetworkMode}}}'
        (container,) = [
            json.loads(line)
            for line in subprocess.run(
                ["docker", "inspect", "--format", fields, *new],
                capture_output=True, text=True, check=True,
            ).stdout.splitlines()
            if "inference" in line
        ]  # fmt: skip
        assert container["Network"] == "host" and container["Image"].startswith("zenml:")
        ready = wait_for(
            lambda: (r := httpx.get(f"{url}/ready")).status_code == 200 and r.json(), "/ready", 120
        )
        row = request_rows(orders(1, 41).drop(columns=TARGET))[0]
        answer = httpx.post(f"{url}/predict", json=row)
        assert (
            answer.status_code == 200 and answer.json()["model_version"] == ready["model_version"]
        )
        listed = run_command(str(BIN / "zenml"), "deployment", "list", env=docker.env).stdout
        assert name in listed and "RUNNING" in listed
        logged = PredictionLogStore(f"sqlite:///{data / 'service-in-a-container.db'}")
        assert answer.json()["request_id"] in logged.request_ids(), "logged in the data folder"
    finally:
        run_command(zenloop, "serve", "--stop", "-c", str(serving), env=docker.env, check=False)
    assert not set(_container_ids()) & set(new), "deprovisioned: the service's container is gone"
