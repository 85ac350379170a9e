"""A client for the service's admin API: how a validated version is handed to a running service.

It only talks HTTP; starting a service is the operations layer's job. A service that is
not running is not an error here: it follows the validated alias when it starts.
"""

from __future__ import annotations

import httpx

from zenloop.admin_token import ensure_admin_token
from zenloop.config import ServingConfig

HEALTH_TIMEOUT_S = 2.0
INFO_TIMEOUT_S = 5.0
LOAD_TIMEOUT_S = 120.0


def base_url(config: ServingConfig) -> str:
    return f"http://{config.host}:{config.port}"


class ServiceUnavailable(RuntimeError):
    """No service answers at the configured address."""


def served_version(config: ServingConfig) -> str | None:
    """The version a running service serves (None when it has no model yet)."""
    url = base_url(config)
    try:
        httpx.get(url + "/health", timeout=HEALTH_TIMEOUT_S).raise_for_status()
        info = httpx.get(url + "/model-info", timeout=INFO_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(f"no service answers at {url}") from exc
    return info.json()["version"] if info.status_code == 200 else None


def hand_over(config: ServingConfig, version: str, alias: str | None) -> str | None:
    """Make a running service serve `version`; returns the version it served before.

    With `alias`, the service loads the alias (and keeps following it); it must resolve to
    `version`, otherwise the alias moved meanwhile and that is reported.
    """
    previous = served_version(config)
    url = base_url(config)
    headers = {"Authorization": f"Bearer {ensure_admin_token(config.admin_token)}"}
    params = {"alias": alias} if alias else {"version": version}
    response = httpx.post(
        url + "/models/load", params=params, headers=headers, timeout=LOAD_TIMEOUT_S
    )
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
