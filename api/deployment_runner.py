"""The prediction service as a ZenML pipeline deployment: an app runner whose app is ours.

ZenML's deployer (local process, Docker container, Kubernetes deployment) starts the
deployment server, which builds its app through the runner flavor named in the
pipeline's `DeploymentSettings`. This runner returns zenloop's own `create_app`, with
every route, middleware, lifespan (the durable log writer, hot reload of the champion)
and the prediction fast path as they are, and adds on top only what ZenML's tools call:
`POST /invoke` (`zenml deployment invoke`: one run of the inference pipeline) and
`GET /info`. Where ZenML would add a route zenloop has (`/health`, `/metrics`), ours wins.

The service's configuration reaches the deployment process in the runner's kwargs: the
`ServingConfig` itself (`serving`, as `zenloop serve` writes it, so the snapshot is
self-contained) or a serving config file (`serving_config`, as `zenml pipeline deploy -c
configs/serving.yaml` gives it).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from zenml import add_tags, remove_tags
from zenml.client import Client
from zenml.deployers.server.app import BaseDeploymentAppRunner, BaseDeploymentAppRunnerFlavor
from zenml.deployers.server.fastapi import FastAPIDeploymentAppRunnerFlavor
from zenml.deployers.server.fastapi.app import FastAPIDeploymentAppRunner

from api.app import create_app
from api.model_state import ServedModel
from api.settings import ServingConfig, load_serving_config
from api.shared_selection import SelectionBoard
from zenloop.paths import project_path

logger = logging.getLogger(__name__)

SERVING_TAG = "serving:"  # the deployment's tag `serving:<model>:v<version>`


def _route_keys(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves already."""
    return {
        (method, route.path)
        for route in app.routes
        for method in (getattr(route, "methods", None) or ())
    }


class ZenloopAppRunner(FastAPIDeploymentAppRunner):
    """Builds zenloop's service app for a ZenML deployment (see the module docstring)."""

    def __init__(
        self,
        deployment: Any,
        serving: dict[str, Any] | None = None,
        serving_config: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(deployment, **kwargs)
        self._tagger = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deployment-tags")
        if serving is not None:
            config = ServingConfig.model_validate(serving)
        else:
            config = load_serving_config(project_path(serving_config) if serving_config else None)
        if config.tracking_uri is None:  # the registry of the stack it was deployed on
            tracker = Client().active_stack.experiment_tracker
            if tracker is not None:
                tracker.configure_mlflow()  # its credentials too (a tracking server's)
                config = config.model_copy(update={"tracking_uri": tracker.get_tracking_uri()})
        self.config = config

    @property
    def flavor(self) -> BaseDeploymentAppRunnerFlavor:
        return ZenloopAppRunnerFlavor()

    def run(self) -> None:
        """Serve: once, before uvicorn starts any worker, a fresh start forgets what an
        earlier one was told to serve (the workers' shared selection)."""
        SelectionBoard.of(self.config).clear()
        super().run()

    def build(self, middlewares, endpoints, extensions) -> FastAPI:
        app = create_app(self.config)
        app.state.service.on_swap.append(self._tag_serving)
        self._asgi_app = app
        app.state.app_runner = self
        ours = _route_keys(app)
        self.register_endpoints(*[e for e in endpoints if (e.method.value, e.path) not in ours])
        self.register_middlewares(*middlewares)
        self.install_extensions(*extensions)
        service_lifespan = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(running: FastAPI) -> AsyncIterator[None]:
            self.startup()  # ZenML's pipeline service, which /invoke runs the pipeline with
            try:
                async with service_lifespan(running):
                    yield
            finally:
                self.shutdown()

        app.router.lifespan_context = lifespan
        return app

    def _tag_serving(self, model: ServedModel) -> None:
        """The deployment's tags say which version serves (`zenml deployment list`, the
        dashboard): set off the event loop, since they go to the ZenML store."""
        self._tagger.submit(self._retag, f"{SERVING_TAG}{model.name}:v{model.version}")

    def _retag(self, tag: str) -> None:
        try:
            current = Client().get_deployment(self.deployment.id).tags()  # a method here
            stale = [t.name for t in current if t.name.startswith(SERVING_TAG) and t.name != tag]
            if stale:
                remove_tags(tags=stale, deployment=self.deployment.id)
            add_tags(tags=[tag], deployment=self.deployment.id)
        except Exception as exc:  # the store may be down: serving goes on, untagged
            logger.warning(
                "could not tag deployment %s with %s: %s", self.deployment.name, tag, exc
            )


class ZenloopAppRunnerFlavor(FastAPIDeploymentAppRunnerFlavor):
    """The flavor `DeploymentSettings.deployment_app_runner_flavor` names; it keeps the
    FastAPI flavor's requirements (uvicorn, fastapi) for the deployer's image."""

    @property
    def name(self) -> str:
        return "zenloop"

    @property
    def implementation_class(self) -> type[BaseDeploymentAppRunner]:
        return ZenloopAppRunner


# ZenML's local deployer starts `python -m zenml.deployers.server.app`, so the module that
# checks a runner flavor's base class runs as __main__, a second copy of it: this flavor is
# registered as a subclass of that copy's class too (ZenML 0.98; Docker and Kubernetes
# start through ZenML's entrypoint and need none of it).
for _main in ("__main__", "__mp_main__"):
    _copy = getattr(sys.modules.get(_main), BaseDeploymentAppRunnerFlavor.__name__, None)
    if isinstance(_copy, type) and _copy is not BaseDeploymentAppRunnerFlavor:
        _copy.register(ZenloopAppRunnerFlavor)
