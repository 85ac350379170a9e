"""configs/inference.yaml, the run config of `zenml pipeline deploy`, serves what
configs/serving.yaml says: its address, model and the deployer's port agree."""

from api.settings import load_serving_config
from ops.service import deployment_name, run_config
from zenloop.config import read_run_config
from zenloop.paths import project_path


def test_the_shipped_inference_config_agrees_with_the_serving_config():
    inference = read_run_config(project_path("configs/inference.yaml"))
    runner = inference["settings"]["deployment"]["deployment_app_runner_kwargs"]
    serving = load_serving_config(project_path(runner["serving_config"]))
    generated = run_config(serving)  # what `zenloop serve --detach` deploys
    for key in ("uvicorn_host", "uvicorn_port"):
        assert inference["settings"]["deployment"][key] == generated["settings"]["deployment"][key]
    assert inference["settings"]["deployer"] == generated["settings"]["deployer"]
    assert inference["steps"] == generated["steps"]
    assert inference["run_name"].startswith(deployment_name(serving))
