"""The page's settings (configs/ui.yaml), validated like every other zenloop config."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError

from zenloop.config import (
    DEFAULT_SERVING_CONFIG,
    ConfigError,
    StrictModel,
    format_validation_error,
    linked_serving,
    read_run_config,
)

DEFAULT_PORT = 8050


class UiConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    serving_config: str | None = Field(
        default=DEFAULT_SERVING_CONFIG,
        description="the service's config: its address and prediction log are read there "
        "unless set here",
    )
    service_url: str | None = Field(
        default=None, description="the prediction service the page reads; default: the service's"
    )
    log_database_url: str | None = Field(
        default=None, description="prediction log and monitor records; default: the service's"
    )
    refresh_s: float = Field(default=5.0, gt=0.0, description="how often the page refreshes")
    traffic_sample_s: float = Field(
        default=5.0, gt=0.0, description="how often the backend samples the service's /metrics"
    )
    traffic_samples_kept: int = Field(default=720, ge=2, description="one hour at 5 s")
    request_timeout_s: float = Field(default=5.0, gt=0.0)
    admin_token: str | None = Field(
        default=None, description="the service's admin token; env ZENLOOP_ADMIN_TOKEN wins"
    )
    tracking_uri: str | None = Field(
        default=None, description="MLflow registry, for the served run's family; default: none"
    )
    mlflow_url: str | None = Field(default=None, description="the MLflow UI, when one runs")
    zenml_url: str | None = Field(default=None, description="the ZenML dashboard, when one runs")
    stack: str | None = Field(default=None, description="the active stack's name, for the page")

    def with_service(self) -> UiConfig:
        """The service's address and log, where this config sets none."""
        serving = linked_serving(self.serving_config)
        return self.model_copy(
            update={
                "service_url": self.service_url or serving.url,
                "log_database_url": self.log_database_url or serving.log.database_url,
            }
        )


def load_ui_config(path: str | Path | None) -> UiConfig:
    """The YAML file is the UiConfig itself (the page is not a ZenML run)."""
    content = {} if path is None else read_run_config(path)
    try:
        config = UiConfig.model_validate(content)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"{path}")) from exc
    return config.with_service()
