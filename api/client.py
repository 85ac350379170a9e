"""A client for the service's admin API: how a validated version is handed to a running service.

It only talks HTTP; starting a service is the operations layer's job. A service that is
not running is not an error here: it follows the validated alias when it starts. A busy
service is retried with back-off until a deadline, never judged by one short timeout.
"""

from __future__ import annotations

import logging
import time

import httpx

from zenloop.admin_token import ensure_admin_token
from zenloop.waiting import with_backoff

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 30.0
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
RETRIED_STATUS = frozenset({502, 503, 504})
NOT_READY = 503  # /model-info of a service that has no model yet


class ServiceUnavailable(RuntimeError):
    """Nothing listens at the service's address."""


class _Busy(RuntimeError):
    """A timeout, a dropped connection or a retried status: the service is busy."""


def _call(
    client: httpx.Client,
    method: str,
    path: str,
    deadline: float,
    retried: frozenset[int] = RETRIED_STATUS,
    **kwargs,
) -> httpx.Response:
    """One call, retried on timeouts and `retried` statuses with back-off until `deadline`."""

    def attempt() -> httpx.Response:
        try:
            response = client.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise ServiceUnavailable(f"no service answers at {client.base_url}") from exc
        except httpx.TransportError as exc:
            raise _Busy(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code in retried:
            raise _Busy(f"{response.status_code} {response.text[:200]}")
        return response

    remaining = max(0.0, deadline - time.monotonic())
    try:
        return with_backoff(attempt, _Busy, remaining, FIRST_BACKOFF_S, MAX_BACKOFF_S, logger)
    except _Busy as busy:
        raise RuntimeError(f"{method} {client.base_url}{path} kept failing: {busy}") from busy


def hand_over(
    url: str,
    name: str,
    version: str,
    alias: str | None,
    timeout_s: float,
    token: str | None = None,
) -> str | None:
    """Make the running service at `url` serve `version` of model `name`; returns the
    version it served before.

    With `alias`, the service loads the alias (and keeps following it); it must resolve to
    `version`, otherwise the alias moved meanwhile and that is reported. A service that
    serves another model is refused: two models' configs point at the same port.
    """
    deadline = time.monotonic() + timeout_s
    headers = {"Authorization": f"Bearer {token or ensure_admin_token(None)}"}
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        info = _call(client, "GET", "/model-info", deadline, RETRIED_STATUS - {NOT_READY})
        served = info.json() if info.status_code == 200 else None
        if served is not None and served["name"] != name:
            raise RuntimeError(
                f"the service at {url} serves model {served['name']}, not {name}: give "
                f"{name}'s serving config a port of its own (zenloop init --port)"
            )
        previous = served["version"] if served is not None else None
        params = {"alias": alias} if alias else {"version": version}
        response = _call(client, "POST", "/models/load", deadline, params=params, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(
            f"the service at {url} refused the model: {response.status_code} {response.text}"
        )
    served = response.json()["model_version"]
    if served != version:
        raise RuntimeError(
            f"the service serves v{served}, not v{version}: the alias moved meanwhile"
        )
    return previous
