"""Alerts go to the active stack's alerter (ZenML's alerter component), if it has one."""

from __future__ import annotations

import logging

from zenml.client import Client

from monitoring.alerts import Alert
from ops.webhook_alerter import AlertParameters

logger = logging.getLogger(__name__)


def send(alerts: list[Alert], where: str) -> int:
    """Post each alert to the stack's alerter; returns how many it took. Without an
    alerter in the stack, alerts are only logged."""
    if not alerts:
        return 0
    alerter = Client().active_stack.alerter
    sent = 0
    for alert in alerts:
        logger.warning("alert: %s", alert.message)
        if alerter is None:
            continue
        params = AlertParameters(
            event=alert.event.value, model=alert.model, details=alert.details, where=where
        )
        sent += bool(alerter.post(alert.message, params))
    return sent
