"""Retry an async call with exponential backoff and jitter, or the server's Retry-After."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from koderz.models.failure import brief

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_BACKOFF = 8.0  # seconds
MAX_RETRY_AFTER = 60.0  # a server asking for a longer wait gets our own backoff instead


def backoff_delay(retry: int, first: float) -> float:
    """Delay before retry number ``retry`` (0-based): ``first * 2**retry``, capped, -25% jitter."""
    return min(first * 2.0**retry, MAX_BACKOFF) * (1 - 0.25 * random.random())


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a server asks us to wait (``retry-after-ms``, ``retry-after`` as seconds or an
    HTTP date), if within (0, MAX_RETRY_AFTER]; None otherwise."""
    seconds: float | None = None
    try:
        if "retry-after-ms" in headers:
            seconds = float(headers["retry-after-ms"]) / 1000
        elif "retry-after" in headers:
            value = headers["retry-after"]
            try:
                seconds = float(value)
            except ValueError:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if seconds is not None and 0 < seconds <= MAX_RETRY_AFTER else None


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    max_retries: int,
    first_backoff: float,
    retryable: Callable[[BaseException], bool],
    what: str,
    asked_delay: Callable[[BaseException], float | None] = lambda exc: None,
) -> T:
    """Await ``call()``; on a retryable error wait and try again, up to ``max_retries`` times.

    The wait is ``asked_delay(exc)`` when it gives one (a server's Retry-After), else the
    backoff. Non-retryable errors and the last retryable one propagate unchanged.
    """
    retry = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            if retry >= max_retries or not retryable(exc):
                raise
            delay = asked_delay(exc)
            if delay is None:
                delay = backoff_delay(retry, first_backoff)
            retry += 1
            log.info("%s failed (%s); retry %d/%d in %.2fs", what, brief(exc), retry, max_retries, delay)
            await asyncio.sleep(delay)
