"""The one health probe: does a server at this URL answer, now?"""

from __future__ import annotations

import httpx

PROBE_TIMEOUT_S = 2.0


def answers(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether `url` answers 200 within `timeout`; a refused or slow connection is a no."""
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False
