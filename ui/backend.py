"""What the page knows, assembled from the service, the registry (via the service) and the
monitor's records; the JSON endpoints and the page's callbacks both call these methods,
so a script reading /api sees exactly what the page shows."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from mlflow.tracking import MlflowClient

from ui.config import UiConfig
from ui.records import Order, Records
from ui.traffic import TrafficSampler
from zenloop.tracking import LEAKS_TAG

logger = logging.getLogger(__name__)

LOGGED_MINUTES = 60  # the durable traffic series: logged predictions per minute, last hour
BAD_GATEWAY = 502
ERROR_CHARS = 300  # of a non-JSON answer, shown to the operator
FAMILY_TAG = "zenloop.family"  # set on each candidate's MLflow run by zenloop.tracking


class ServiceUnreachable(RuntimeError):
    """The prediction service did not answer (or answered with an error)."""


class OpsBackend:
    def __init__(self, config: UiConfig):
        self.config = config
        self.records = Records(config.log_database_url)
        self.sampler = TrafficSampler(
            f"{config.service_url}/metrics",
            config.traffic_sample_s,
            config.traffic_samples_kept,
            config.request_timeout_s,
        )
        self._families: dict[str, str | None] = {}
        self._leaks: dict[tuple[str, str], str | None] = {}

    # -- the service --------------------------------------------------------------------
    def _get(self, path: str) -> Any:
        try:
            response = httpx.get(
                self.config.service_url + path, timeout=self.config.request_timeout_s
            )
        except httpx.HTTPError as exc:
            raise ServiceUnreachable(f"{self.config.service_url}{path}: {exc}") from exc
        if response.status_code != 200:
            raise ServiceUnreachable(f"{path} answered {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:  # e.g. a proxy's HTML error page
            raise ServiceUnreachable(f"{path} answered with no JSON") from exc

    def predict(self, row: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One row to the service's public /predict, exactly as any client sends it."""
        try:
            response = httpx.post(
                self.config.service_url + "/predict",
                json=row,
                timeout=self.config.request_timeout_s,
            )
        except httpx.HTTPError as exc:
            return 0, {"detail": f"the service did not answer: {exc}"}
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, {"detail": response.text[:ERROR_CHARS]}

    def reload(self, token: str) -> tuple[int, Any]:
        """The admin reload, forwarded with the caller's own token (the service checks it too)."""
        try:
            response = httpx.post(
                self.config.service_url + "/models/reload",
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.config.request_timeout_s,
            )
            return response.status_code, response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return BAD_GATEWAY, {"detail": f"the service did not answer: {exc}"}

    def family(self, run_id: str | None) -> str | None:
        """The candidate family of a training run (an MLflow tag; /model-info lacks it)."""
        if run_id is None or self.config.tracking_uri is None:
            return None
        if run_id not in self._families:
            try:
                client = MlflowClient(tracking_uri=self.config.tracking_uri)
                self._families[run_id] = client.get_run(run_id).data.tags.get(FAMILY_TAG)
            except Exception:  # the registry may be down; the page shows "-"
                logger.warning("no family for run %s", run_id, exc_info=True)
                return None
        return self._families[run_id]

    def leaks(self, name: str, version: str) -> str | None:
        """The suspected leaks promotion found in a registered version (an MLflow tag: the
        columns flagged at profiling and those that alone came close to the whole model)."""
        if self.config.tracking_uri is None:
            return None
        key = (name, version)
        if key not in self._leaks:
            try:
                client = MlflowClient(tracking_uri=self.config.tracking_uri)
                self._leaks[key] = client.get_model_version(name, version).tags.get(LEAKS_TAG)
            except Exception:  # the registry may be down; the page shows the served schema's
                logger.warning("no leak tag for %s v%s", name, version, exc_info=True)
                return None
        return self._leaks[key]

    # -- what the endpoints answer ------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        model, versions, error = None, [], None
        try:
            model = self._get("/model-info")
            versions = self._get("/models")
            model["family"] = self.family(model.get("mlflow_run_id"))
            model["leaks"] = self.leaks(model["name"], model["version"])
        except ServiceUnreachable as exc:
            error = str(exc)
        retrains = self.records.retrains(1)
        latest_check = (self.records.checks(1) or [None])[0]
        latest_retrain = retrains[0] if retrains else None
        alerts = []
        if latest_check and latest_check["baseline_alert"]:
            alerts.append(latest_check["baseline_alert"])
        if latest_retrain and latest_retrain["rolled_back_at"]:
            alerts.append(latest_retrain["review"])
        return {
            "generated_at": time.time(),
            "service": {"url": self.config.service_url, "ready": model is not None, "error": error},
            "model": model,
            "versions": versions,
            "monitor": {"latest_check": latest_check, "latest_retrain": latest_retrain},
            "alerts": alerts,
            "links": self.links(),
        }

    def links(self) -> dict[str, str | None]:
        return {
            "stack": self.config.stack,
            "mlflow_ui": self.config.mlflow_url,
            "zenml_dashboard": self.config.zenml_url,
            "service_docs": f"{self.config.service_url}/docs",
        }

    def drift(self) -> dict[str, Any]:
        return {"check": self.records.latest_check()}

    def history(self, limit: int, order: Order) -> dict[str, Any]:
        return {
            "checks": self.records.checks(limit, order),
            "retrains": self.records.retrains(limit, order),
        }

    def traffic(self, limit: int) -> dict[str, Any]:
        latest = self.sampler.latest()
        return {
            "sample_interval_s": self.config.traffic_sample_s,
            "samples": self.sampler.points(limit),
            "sampler_error": self.sampler.last_error,
            "totals": None
            if latest is None
            else {
                "at": latest.at,
                "prediction_requests": latest.requests,
                "client_errors": latest.client_errors,
                "server_errors": latest.server_errors,
                "log": latest.log,
            },
            "logged_per_minute": self.records.logged_per_minute(LOGGED_MINUTES),
        }

    def form_defaults(self) -> dict[str, Any]:
        return self.records.last_logged_features() or {}
