"""The service's configuration: the serving YAML file (`ServingConfig`), and the settings
an operator may override from the environment without editing it (pydantic-settings).

The environment wins over the file, the file over the defaults:
- `ZENLOOP_LOG_ACKNOWLEDGE` for `log.acknowledge`,
- `ZENLOOP_MAX_BODY_BYTES` for `max_body_bytes` (unset: room for `max_batch_rows` rows),
- `ZENLOOP_ADMIN_TOKEN` for `admin_token` (zenloop.admin_token resolves it).
Other configs read only where the service listens, logs and sends events from this file
(zenloop.config.ServiceLink).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveInt, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.schemas import FEEDBACK_MAX_ITEMS
from zenloop.config import (
    DEFAULT_ALIAS,
    DEFAULT_EVENTS_URL,
    DEFAULT_MODEL_NAME,
    DEFAULT_SERVICE_HOST,
    DEFAULT_SERVICE_PORT,
    ConfigError,
    StrictModel,
    format_validation_error,
    read_run_config,
)

Acknowledge = Literal["committed", "queued"]
COMMITTED: Acknowledge = "committed"  # a 200 means the prediction's log row is committed
ENV_PREFIX = "ZENLOOP_"
ACKNOWLEDGE_ENV = f"{ENV_PREFIX}LOG_ACKNOWLEDGE"  # Overrides.log_acknowledge
MAX_BODY_BYTES_ENV = f"{ENV_PREFIX}MAX_BODY_BYTES"  # Overrides.max_body_bytes
# The default body limit: room for max_batch_rows rows of this size, or a full /feedback
# body (FEEDBACK_MAX_ITEMS items of this size), whichever is larger, plus the envelope.
BODY_BYTES_PER_ROW = 2_048
BODY_BYTES_PER_FEEDBACK_ITEM = 256
BODY_BYTES_OVERHEAD = 64 * 1_024


class ModelSourceConfig(StrictModel):
    """Which model to serve: a registry alias, a registry version, or a local MLflow model dir."""

    name: str = DEFAULT_MODEL_NAME
    alias: str = DEFAULT_ALIAS
    version: str | None = Field(default=None, description="pins a version; overrides alias")
    local_path: str | None = Field(default=None, description="offline: an MLflow model folder")


class PredictionLogConfig(StrictModel):
    enabled: bool = True
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite (WAL) in the data folder"
    )
    capacity_rows: int = Field(
        default=200_000, ge=1, description="queued rows before back-pressure"
    )
    batch_rows: int = Field(default=2_000, ge=1)
    flush_interval_s: float = Field(default=0.05, gt=0.0)
    checkpoint_interval_s: float = Field(
        default=0.01,
        gt=0.0,
        description="SQLite: how often the WAL is checkpointed, off the commit path (while "
        "rows are written); short keeps each checkpoint, and the commits beside it, short",
    )
    enqueue_timeout_s: float = Field(
        default=5.0, ge=0.0, description="how long a request waits for room before a 503"
    )
    acknowledge: Acknowledge = Field(
        default=COMMITTED,
        description="committed: a 200 means the log row is committed (group commit); queued: "
        "a 200 once the row is queued, faster, and a crash loses at most the queue",
    )


class ServingConfig(StrictModel):
    host: str = DEFAULT_SERVICE_HOST
    port: int = Field(default=DEFAULT_SERVICE_PORT, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    workers_sync_interval_s: float = Field(
        default=0.2, gt=0.0, description="with workers > 1: how often each follows admin loads"
    )
    workers_sync_timeout_s: float = Field(
        default=60.0, gt=0.0, description="an admin load waits this long for every worker"
    )
    model: ModelSourceConfig = Field(default_factory=ModelSourceConfig)
    max_batch_rows: int = Field(default=10_000, ge=1)
    max_body_bytes: int | None = Field(
        default=None,
        ge=1,
        description="request bodies above this get a 413 while being read; default: room "
        "for max_batch_rows rows",
    )
    extra_fields: Literal["reject", "ignore"] = "reject"
    fast_path: bool = Field(
        default=True,
        description="serve /predict and /predict_batch ahead of FastAPI's router (same "
        "answers, less overhead); false routes them through FastAPI, e.g. for your own "
        "middleware or dependencies on them",
    )
    admin_token: str | None = Field(
        default=None,
        description="required by state-changing endpoints; env ZENLOOP_ADMIN_TOKEN wins",
    )
    reload_interval_s: float = Field(default=10.0, gt=0.0)
    require_validation: bool = Field(
        default=True,
        description="hot-reload only versions the deployment pipeline validated",
    )
    tracking_uri: str | None = Field(
        default=None, description="the MLflow registry; default: the active stack's"
    )
    log: PredictionLogConfig = Field(default_factory=PredictionLogConfig)
    events: EventConfig = Field(default_factory=lambda: EventConfig())

    @property
    def url(self) -> str:
        """Where clients reach the service."""
        return f"http://{self.host}:{self.port}"


def load_serving_config(path: str | Path | None) -> ServingConfig:
    """The serving YAML is the ServingConfig itself (the service is not a ZenML run)."""
    if path is None:
        return ServingConfig()
    try:
        return ServingConfig.model_validate(read_run_config(path))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from exc


class EventConfig(StrictModel):
    """The service tells the monitor every `every_rows` logged predictions (best effort)."""

    url: str | None = Field(
        default=DEFAULT_EVENTS_URL, pattern=r"^https?://", description="null = off"
    )
    every_rows: int = Field(default=500, ge=1)
    timeout_s: float = Field(default=1.0, gt=0.0)


class Overrides(BaseSettings):
    """What the environment may override (`ZENLOOP_<NAME>`); unset fields leave the file's."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")
    log_acknowledge: Acknowledge | None = None
    max_body_bytes: PositiveInt | None = None


@dataclass(frozen=True)
class ServingSettings:
    acknowledge: Acknowledge
    max_body_bytes: int

    @property
    def durable(self) -> bool:
        return self.acknowledge == COMMITTED

    @classmethod
    def resolve(cls, config: ServingConfig) -> ServingSettings:
        """The environment wins over the config, the config over the defaults."""
        try:
            overrides = Overrides()
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENV_PREFIX}{str(error['loc'][0]).upper()}: {error['msg']}"
                for error in exc.errors()
            )
            message = f"the environment overrides the serving config badly: {problems}"
            raise ConfigError(message) from exc
        limit = overrides.max_body_bytes or config.max_body_bytes
        return cls(
            acknowledge=overrides.log_acknowledge or config.log.acknowledge,
            max_body_bytes=limit or default_body_limit(config.max_batch_rows),
        )


def default_body_limit(max_batch_rows: int) -> int:
    """Bytes enough for the largest batch or feedback body the service accepts."""
    rows = max_batch_rows * BODY_BYTES_PER_ROW
    feedback = FEEDBACK_MAX_ITEMS * BODY_BYTES_PER_FEEDBACK_ITEM
    return max(rows, feedback) + BODY_BYTES_OVERHEAD
