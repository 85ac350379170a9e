"""A ZenML alerter that posts to a webhook: a Slack incoming webhook, or any HTTP endpoint
that takes JSON.

ZenML's own alerters talk to Slack's Web API with a bot token, or to Discord's gateway;
neither posts to a plain webhook URL, which is what most teams can create in a minute and
what a test can receive on 127.0.0.1. The body is `{"text": ...}` (what Slack and
Slack-compatible endpoints read) with the alert's fields beside it: `event`, `model`,
`message`, `details`, `where`.

Registered as the alerter flavor `zenloop_webhook` by `zenloop stack up`. An alert that
cannot be delivered is logged and dropped: alerting never fails the loop.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import httpx
from pydantic import Field
from zenml.alerter.base_alerter import (
    BaseAlerter,
    BaseAlerterConfig,
    BaseAlerterFlavor,
    BaseAlerterStepParameters,
)

logger = logging.getLogger(__name__)

FLAVOR = "zenloop_webhook"


class WebhookAlerterConfig(BaseAlerterConfig):
    webhook_url: str = Field(description="where alerts are posted; empty: alerts are off")
    timeout_s: float = Field(default=5.0, gt=0)


class AlertParameters(BaseAlerterStepParameters):
    """What an alert is about, beside its one-line message."""

    event: str = "message"
    model: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    where: str | None = None  # where to look: a command, a page


class WebhookAlerter(BaseAlerter):
    @property
    def config(self) -> WebhookAlerterConfig:
        return cast(WebhookAlerterConfig, self._config)

    def post(self, message: str, params: BaseAlerterStepParameters | None = None) -> bool:
        """Post one alert; True once the endpoint took it."""
        if not self.config.webhook_url:
            return False
        alert = params if isinstance(params, AlertParameters) else AlertParameters()
        text = message if alert.where is None else f"{message} (see {alert.where})"
        body = {"text": text, "message": message, **alert.model_dump(mode="json")}
        try:
            answer = httpx.post(self.config.webhook_url, json=body, timeout=self.config.timeout_s)
        except httpx.HTTPError as exc:
            logger.warning("alert not delivered to the webhook: %s", exc)
            return False
        if not answer.is_success:
            logger.warning("alert refused by the webhook: HTTP %s", answer.status_code)
        return answer.is_success

    def ask(self, question: str, params: BaseAlerterStepParameters | None = None) -> bool:
        """A webhook cannot answer: the question is posted, and the answer is no."""
        self.post(question, params)
        return False


class WebhookAlerterFlavor(BaseAlerterFlavor):
    @property
    def name(self) -> str:
        return FLAVOR

    @property
    def config_class(self) -> type[WebhookAlerterConfig]:
        return WebhookAlerterConfig

    @property
    def implementation_class(self) -> type[WebhookAlerter]:
        return WebhookAlerter
