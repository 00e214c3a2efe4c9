"""The backoff loop retries only what it is told to, and gives up after max_retries."""

from __future__ import annotations

import email.utils
import time

import pytest

from koderz.models.retry import MAX_BACKOFF, backoff_delay, retry_after, with_retries


class Busy(Exception):
    pass


def failing(errors: list[Exception], result: str = "done"):
    calls: list[int] = []

    async def call() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result

    return call, calls


async def test_retryable_errors_are_retried_until_success():
    call, calls = failing([Busy(), Busy()])
    assert (
        await with_retries(call, max_retries=2, first_backoff=0.001, retryable=lambda e: isinstance(e, Busy), what="t")
        == "done"
    )
    assert len(calls) == 3


async def test_gives_up_after_max_retries_with_the_last_error():
    call, calls = failing([Busy("1"), Busy("2"), Busy("3")])
    with pytest.raises(Busy, match="2"):
        await with_retries(call, max_retries=1, first_backoff=0.001, retryable=lambda e: isinstance(e, Busy), what="t")
    assert len(calls) == 2


async def test_other_errors_surface_at_once():
    call, calls = failing([KeyError("x")])
    with pytest.raises(KeyError):
        await with_retries(call, max_retries=5, first_backoff=0.001, retryable=lambda e: isinstance(e, Busy), what="t")
    assert len(calls) == 1


def test_backoff_doubles_with_jitter_and_is_capped():
    for retry in range(4):
        assert 0.75 * 0.5 * 2**retry <= backoff_delay(retry, 0.5) <= 0.5 * 2**retry
    assert backoff_delay(20, 0.5) <= MAX_BACKOFF


@pytest.mark.parametrize(
    "headers,expected",
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after-ms": "20", "retry-after": "3"}, 0.02),  # the precise one wins
        ({"retry-after": "600"}, None),  # longer than MAX_RETRY_AFTER: our own backoff
        ({"retry-after": "0"}, None),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_the_servers_wish_within_bounds(headers, expected):
    assert retry_after(headers) == (pytest.approx(expected) if expected is not None else None)


def test_retry_after_accepts_an_http_date():
    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    wait = retry_after({"retry-after": when})
    assert wait is not None and 3.0 < wait <= 5.0


async def test_the_servers_delay_replaces_the_backoff():
    call, calls = failing([Busy()])
    asked: list[BaseException] = []

    def delay(exc: BaseException) -> float:
        asked.append(exc)
        return 0.0

    result = await with_retries(
        call, max_retries=1, first_backoff=60.0, retryable=lambda e: True, what="t", asked_delay=delay
    )
    assert result == "done" and len(calls) == 2 and isinstance(asked[0], Busy)
