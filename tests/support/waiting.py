"""The one way tests wait: for an event, with a deadline, never a bare sleep."""

import time
from collections.abc import Callable
from typing import Any

POLL_S = 0.1  # how often a condition is asked again


def wait_for(condition: Callable[[], Any], what: str, timeout: float, poll_s: float = POLL_S):
    """Poll `condition` until it is truthy (returned), or fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(poll_s)
    return value
