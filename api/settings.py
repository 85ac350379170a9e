"""The service's reliability settings: how a prediction is acknowledged, how big a body may be.

They are `ServingConfig` fields (`log.acknowledge`, `max_body_bytes`); like the admin token,
the environment overrides them for an operator who cannot edit the config:
`ZENLOOP_LOG_ACKNOWLEDGE` and `ZENLOOP_MAX_BODY_BYTES`. An unset body limit is derived
from `max_batch_rows`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from api.schemas import FEEDBACK_MAX_ITEMS
from zenloop.config import ConfigError, ServingConfig

Acknowledge = Literal["committed", "queued"]
COMMITTED: Acknowledge = "committed"  # a 200 means the prediction's log row is committed
ACKNOWLEDGE_ENV = "ZENLOOP_LOG_ACKNOWLEDGE"
MAX_BODY_BYTES_ENV = "ZENLOOP_MAX_BODY_BYTES"
# The default body limit: room for max_batch_rows rows of this size, or a full /feedback
# body (FEEDBACK_MAX_ITEMS items of this size), whichever is larger, plus the envelope.
BODY_BYTES_PER_ROW = 2_048
BODY_BYTES_PER_FEEDBACK_ITEM = 256
BODY_BYTES_OVERHEAD = 64 * 1_024


@dataclass(frozen=True)
class ServingSettings:
    acknowledge: Acknowledge
    max_body_bytes: int

    @property
    def durable(self) -> bool:
        return self.acknowledge == COMMITTED

    @classmethod
    def resolve(
        cls, config: ServingConfig, environ: Mapping[str, str] = os.environ
    ) -> ServingSettings:
        """The environment wins over the config, the config over the defaults."""
        acknowledge = environ.get(ACKNOWLEDGE_ENV) or config.log.acknowledge
        if acknowledge not in get_args(Acknowledge):
            raise ConfigError(
                f"{ACKNOWLEDGE_ENV}/log.acknowledge must be one of {get_args(Acknowledge)},"
                f" not {acknowledge!r}"
            )
        limit = environ.get(MAX_BODY_BYTES_ENV) or config.max_body_bytes
        if limit is None:
            limit = default_body_limit(config.max_batch_rows)
        if not str(limit).isdigit() or int(limit) < 1:
            raise ConfigError(
                f"{MAX_BODY_BYTES_ENV}/max_body_bytes must be a positive number of bytes,"
                f" not {limit!r}"
            )
        return cls(acknowledge=acknowledge, max_body_bytes=int(limit))


def default_body_limit(max_batch_rows: int) -> int:
    """Bytes enough for the largest batch or feedback body the service accepts."""
    rows = max_batch_rows * BODY_BYTES_PER_ROW
    feedback = FEEDBACK_MAX_ITEMS * BODY_BYTES_PER_FEEDBACK_ITEM
    return max(rows, feedback) + BODY_BYTES_OVERHEAD
