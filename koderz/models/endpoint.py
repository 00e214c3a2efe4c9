"""One model server as the run sees it: a circuit breaker and a concurrency limit, shared by
every model (role) that calls that server.

The breaker counts consecutive *connection* failures (nothing answered: refused, reset,
dropped, DNS); any HTTP answer resets the count, a read timeout leaves it alone. After
``breaker_failures`` of them it opens: no request is sent, calls wait, and the server is
probed with backoff. A probe that gets through closes the breaker and the waiting calls go
on; if none does within ``breaker_wait`` seconds the endpoint is down for the rest of the run
and every waiting and later call raises ``EndpointDown`` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from koderz.models.config import ModelConfig
from koderz.models.retry import MAX_BACKOFF, with_retries
from koderz.models.transport import cause, connection_failed, read_timed_out

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[object]]
T = TypeVar("T")
MIN_PROBE_DELAY = 0.01  # seconds: a zero retry_backoff must not probe in a tight loop


class BreakerState(StrEnum):
    CLOSED = "closed"  # calls are sent
    OPEN = "open"  # calls wait while the endpoint is probed
    DOWN = "down"  # given up: every call fails at once


class EndpointDown(Exception):
    """The breaker gave up on the endpoint; providers turn it into ModelError(kind=endpoint_down)."""


@dataclass(frozen=True)
class EndpointSettings:
    """How an endpoint is protected (from ModelConfig's keys of the same names)."""

    max_concurrency: int | None = None  # None = unlimited
    breaker_failures: int = 3
    breaker_wait: float = 90.0  # seconds
    first_probe: float = 0.5  # seconds before the first probe; doubles up to MAX_BACKOFF

    def shared_with(self, other: EndpointSettings) -> EndpointSettings:
        """The settings when two models share the endpoint: the smallest limit and failure
        count, the longest wait, the earliest first probe."""
        limits = [n for n in (self.max_concurrency, other.max_concurrency) if n is not None]
        return EndpointSettings(
            min(limits) if limits else None,
            min(self.breaker_failures, other.breaker_failures),
            max(self.breaker_wait, other.breaker_wait),
            min(self.first_probe, other.first_probe),
        )


@dataclass(frozen=True)
class EndpointStatus:
    """A snapshot for the runner and the user."""

    key: str
    state: BreakerState
    since: float | None  # time.time() when the breaker opened (open or down); None when closed
    failures: int  # consecutive connection failures so far
    in_flight: int  # requests sent and not yet answered
    waiting: int  # calls waiting for a slot or for the breaker
    last_error: str  # the last connection failure's cause, "" if none


class Endpoint:
    """The breaker and the concurrency limit of one server (``key`` = provider and URL)."""

    def __init__(self, key: str, settings: EndpointSettings, probe: Probe) -> None:
        self.key = key
        self.settings = settings
        self._probe = probe
        self._state = BreakerState.CLOSED
        self._since: float | None = None
        self._failures = 0
        self._last_error = ""
        self._in_flight = 0
        self._waiting = 0
        self._changed: asyncio.Event | None = None  # set when an open breaker closes or gives up
        self._prober: asyncio.Task[None] | None = None
        self._slots: asyncio.Semaphore | None = None  # made at first use, after every model joined

    def join(self, settings: EndpointSettings) -> None:
        """Another model uses this endpoint: the settings become the shared ones."""
        if self._slots is not None and settings.max_concurrency != self.settings.max_concurrency:
            log.warning("%s: already in use; its concurrency limit stays %s", self.key, self.settings.max_concurrency)
        self.settings = self.settings.shared_with(settings)

    @property
    def state(self) -> BreakerState:
        return self._state

    def status(self) -> EndpointStatus:
        return EndpointStatus(
            self.key, self._state, self._since, self._failures, self._in_flight, self._waiting, self._last_error
        )

    @contextlib.asynccontextmanager
    async def admit(self) -> AsyncIterator[float]:
        """Hold a slot for one request; yields the seconds spent waiting for it.

        Waits while the breaker is open, raises EndpointDown once it gave up; the request's
        outcome (an exception raised inside the block, or none) feeds the breaker.
        """
        asked = time.perf_counter()
        self._waiting += 1
        try:
            await self._take_slot()
        finally:
            self._waiting -= 1
        self._in_flight += 1
        try:
            yield time.perf_counter() - asked
        except Exception as exc:
            self._record(exc)
            raise
        else:
            self._record(None)
        finally:
            self._in_flight -= 1
            self._release_slot()

    async def send(
        self,
        request: Callable[[], Awaitable[T]],
        cfg: ModelConfig,
        *,
        retryable: Callable[[BaseException], bool],
        what: str,
        asked_delay: Callable[[BaseException], float | None] = lambda exc: None,
    ) -> tuple[T, float, float]:
        """``request()`` through a slot, retried per ``cfg`` (``with_retries``); returns its result,
        the seconds it took without waiting for slots, and the seconds spent waiting."""
        queued = 0.0

        async def attempt() -> T:
            nonlocal queued
            async with self.admit() as waited:
                queued += waited
                return await request()

        start = time.perf_counter()
        result = await with_retries(
            attempt,
            max_retries=cfg.max_retries,
            first_backoff=cfg.retry_backoff,
            retryable=retryable,
            what=what,
            asked_delay=asked_delay,
        )
        return result, time.perf_counter() - start - queued, queued

    async def _take_slot(self) -> None:
        """Wait for a closed breaker and a free slot; the slot is held on return."""
        limit = self.settings.max_concurrency
        if self._slots is None and limit is not None:
            self._slots = asyncio.Semaphore(limit)
        while True:
            await self._usable()
            if self._slots is not None:
                await self._slots.acquire()
            if self._state is BreakerState.CLOSED:
                return
            self._release_slot()  # opened while we queued for the slot: wait again

    def _release_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()

    async def _usable(self) -> None:
        while self._state is BreakerState.OPEN:
            assert self._changed is not None
            await self._changed.wait()
        if self._state is BreakerState.DOWN:
            raise EndpointDown(self.down_reason())

    def down_reason(self) -> str:
        waited = self.settings.breaker_wait
        return (
            f"endpoint down: {self._failures} connection failures in a row "
            f"and no answer to probes for {waited:g}s (last: {self._last_error or 'unknown'})"
        )

    def _record(self, exc: Exception | None) -> None:
        if exc is None or not connection_failed(exc):
            if exc is None or not read_timed_out(exc):
                self._failures = 0  # the server answered
            return
        self._failures += 1
        self._last_error = cause(exc)
        if self._state is BreakerState.CLOSED and self._failures >= self.settings.breaker_failures:
            self._open()

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._since = time.time()
        self._changed = asyncio.Event()
        log.warning(
            "%s: %d connection failures in a row (%s); calls paused, probing for up to %gs",
            self.key,
            self._failures,
            self._last_error,
            self.settings.breaker_wait,
        )
        self._prober = asyncio.get_running_loop().create_task(self._probe_until_back())

    async def _probe_until_back(self) -> None:
        deadline = time.monotonic() + self.settings.breaker_wait
        delay = max(self.settings.first_probe, MIN_PROBE_DELAY)
        while (remaining := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, MAX_BACKOFF)
            try:
                await self._probe()
            except Exception as exc:  # noqa: BLE001 - any error but a connection failure means it answered
                if connection_failed(exc):
                    self._last_error = cause(exc)
                    log.debug("%s: probe failed (%s)", self.key, self._last_error)
                    continue
            self._settle(BreakerState.CLOSED)
            return
        self._settle(BreakerState.DOWN)

    def _settle(self, state: BreakerState) -> None:
        self._state = state
        if state is BreakerState.CLOSED:
            log.warning("%s: answering again after %.1fs; calls resume", self.key, time.time() - (self._since or 0))
            self._since = None
            self._failures = 0
        else:
            log.error("%s: %s; its calls fail from now on", self.key, self.down_reason())
        assert self._changed is not None
        self._changed.set()

    async def aclose(self) -> None:
        """Stop probing (the run is over); calls still waiting on an open breaker fail."""
        if self._prober is not None and not self._prober.done():
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
        if self._state is BreakerState.OPEN:
            assert self._changed is not None
            self._state = BreakerState.DOWN
            self._changed.set()
