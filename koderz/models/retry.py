"""Retry an async call with exponential backoff and jitter."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_BACKOFF = 8.0  # seconds


def backoff_delay(retry: int, first: float) -> float:
    """Delay before retry number ``retry`` (0-based): ``first * 2**retry``, capped, -25% jitter."""
    return min(first * 2.0**retry, MAX_BACKOFF) * (1 - 0.25 * random.random())


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    max_retries: int,
    first_backoff: float,
    retryable: Callable[[BaseException], bool],
    what: str,
) -> T:
    """Await ``call()``; on a retryable error wait and try again, up to ``max_retries`` times.

    Non-retryable errors and the last retryable one propagate unchanged.
    """
    retry = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            if retry >= max_retries or not retryable(exc):
                raise
            delay = backoff_delay(retry, first_backoff)
            retry += 1
            log.info("%s failed (%s); retry %d/%d in %.2fs", what, exc, retry, max_retries, delay)
            await asyncio.sleep(delay)
