"""The page's settings (configs/ui.yaml), validated like every other zenloop config."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError

from zenloop.config import ConfigError, StrictModel, format_validation_error, read_run_config

DEFAULT_PORT = 8050


class UiConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    service_url: str = Field(
        default="http://127.0.0.1:8000", description="the prediction service the page reads"
    )
    log_database_url: str | None = Field(
        default=None, description="prediction log and monitor records; default data/predictions.db"
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


def load_ui_config(path: str | Path | None) -> UiConfig:
    """The YAML file is the UiConfig itself (the page is not a ZenML run)."""
    content = {} if path is None else read_run_config(path)
    try:
        return UiConfig.model_validate(content)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"{path}")) from exc
