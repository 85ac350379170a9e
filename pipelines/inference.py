"""Inference: the champion's predictions for rows, and the prediction service's deployment.

Deployed (`zenloop serve`, `zenloop deploy`, or `zenml pipeline deploy
pipelines.inference.inference_pipeline -n NAME -c configs/inference.yaml`), it is a
long-running service through the active stack's deployer: its app is zenloop's own
service (api.deployment_runner), with `/predict`, `/predict_batch`, `/feedback`,
`/models/*`, `/metrics`, the durable log and hot reload, plus ZenML's `/invoke`, which
runs this pipeline once. ZenML's default middleware and access log are off: every request
would pay for them (benchmarks/serving.py).
"""

from typing import Any

from zenml import pipeline
from zenml.config import DeploymentDefaultEndpoints, DeploymentDefaultMiddleware, DeploymentSettings

from pipelines.docker_settings import docker_settings
from steps.inference import predict_rows

RUNNER_FLAVOR = "api.deployment_runner.ZenloopAppRunnerFlavor"
GRACEFUL_SHUTDOWN_S = 30  # in-flight requests finish and the log writer drains


def deployment_settings() -> DeploymentSettings:
    """The service's app and server: zenloop's app (api.deployment_runner), ZenML's
    `/invoke` and `/info` beside it (its `/health` check is answered by ours), none of
    ZenML's middleware, no access log."""
    endpoints = (
        DeploymentDefaultEndpoints.INVOKE
        | DeploymentDefaultEndpoints.HEALTH
        | DeploymentDefaultEndpoints.INFO
    )
    return DeploymentSettings(
        app_title="zenloop prediction service",
        deployment_app_runner_flavor=RUNNER_FLAVOR,
        include_default_endpoints=endpoints,
        include_default_middleware=DeploymentDefaultMiddleware.NONE,
        uvicorn_kwargs={"access_log": False, "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S},
    )


@pipeline(
    enable_cache=False,
    settings={"docker": docker_settings(deployed=True), "deployment": deployment_settings()},
)
def inference_pipeline(
    rows: list[dict[str, Any]] = [],  # noqa: B006 (ZenML's input schema; never mutated)
) -> list[dict[str, Any]]:
    """`rows` as a request's rows: `zenml deployment invoke NAME --rows='[{...}]'` (a
    list: the CLI reads it as JSON). The model and alias are `predict_rows`'s parameters
    in the run config: the served ones."""
    return predict_rows(rows)
