"""The one way to wait for something: a condition polled until it holds or a deadline
passes, and a call retried with exponential back-off (both on tenacity)."""

from __future__ import annotations

import logging
import operator
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_exponential,
    wait_fixed,
)

T = TypeVar("T")
POLL_S = 0.25


def _last_result(state: RetryCallState):
    return state.outcome.result()


def poll_until(condition: Callable[[], T], timeout: float, interval: float = POLL_S) -> T:
    """Ask `condition` every `interval` until it returns something truthy, which is
    returned; after `timeout`, its last (falsy) answer. Exceptions it raises propagate."""
    return Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(operator.not_),
        retry_error_callback=_last_result,
    )(condition)


async def poll_until_async(
    condition: Callable[[], Awaitable[T]], timeout: float, interval: float = POLL_S
) -> T:
    """`poll_until` for a coroutine: the event loop goes on between asks."""
    return await AsyncRetrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(operator.not_),
        retry_error_callback=_last_result,
    )(condition)


def with_backoff(
    call: Callable[[], T],
    retried: type[BaseException],
    timeout: float,
    first_s: float,
    max_s: float,
    logger: logging.Logger,
) -> T:
    """`call()`, again after `first_s`, `2 * first_s`, ... (at most `max_s` apart) while it
    raises `retried`, until `timeout`; then its last `retried` error is raised."""
    return Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_exponential(multiplier=first_s, max=max_s),
        retry=retry_if_exception_type(retried),
        before_sleep=before_sleep_log(logger, logging.INFO),
        reraise=True,
    )(call)
