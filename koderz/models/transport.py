"""What went wrong on the wire: SDK exceptions classified by the httpx/OS error beneath them."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
from collections.abc import Iterator
from types import ModuleType

from koderz.errors import ModelError, ModelErrorKind
from koderz.models.failure import brief, model_error

CONNECT_TIMEOUT = 10.0  # seconds to open a TCP connection; a live server accepts at once
PREFLIGHT_TIMEOUT = 30.0  # seconds to wait for preflight's answer (at most model.timeout)
PROBE_TIMEOUT = 10.0  # seconds for a breaker probe's answer

# The ollama SDK runs on httpx; openai up to 2.x on httpx, from 3.x on its fork httpx2 (same names).
_HTTP_LIBRARIES: list[ModuleType] = [
    importlib.import_module(name) for name in ("httpx", "httpx2") if importlib.util.find_spec(name) is not None
]


def _errors(*names: str) -> tuple[type[BaseException], ...]:
    return tuple(getattr(library, name) for library in _HTTP_LIBRARIES for name in names)


# Nothing answered: refused, reset, dropped before the answer, DNS, no route, connect timeout.
# (The ollama SDK turns a refused connection into the builtin ConnectionError.)
_CONNECTION_FAILURES = (
    *_errors("ConnectError", "ConnectTimeout", "NetworkError", "RemoteProtocolError"),
    ConnectionError,
)
_READ_TIMEOUTS = _errors("ReadTimeout", "WriteTimeout", "PoolTimeout")


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions beneath it (``__cause__``, else ``__context__``), outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def connection_failed(exc: BaseException) -> bool:
    """True when the server never answered: the connection could not be made or broke before the answer."""
    return any(isinstance(e, _CONNECTION_FAILURES) for e in chain(exc))


def read_timed_out(exc: BaseException) -> bool:
    """True when a connection was made but the answer did not come in time."""
    return any(isinstance(e, _READ_TIMEOUTS) for e in chain(exc))


def cause(exc: BaseException) -> str:
    """The most specific reason, as ``Type: message``: the innermost error beneath the SDK's own
    that has a message, else that transport error's type alone (e.g. ``ReadTimeout``)."""
    links = [link for link in chain(exc) if not isinstance(link, asyncio.CancelledError)]  # a timeout's mechanics
    beneath = links[1:] or links
    for link in reversed(beneath):
        text = " ".join(str(link).split())
        if text:
            return f"{type(link).__name__}: {text}"
    return type(beneath[0]).__name__


def unanswered(
    model: str, url: str, exc: BaseException, waited: float, server: str, start: str, busy: str
) -> ModelError:
    """Nothing came back: no connection (``start``: how to start the ``server``), or no answer
    within ``waited`` seconds (``busy``: why it may be busy)."""
    why = brief(cause(exc))
    if connection_failed(exc):
        return model_error(model, url, f"cannot connect to the {server} ({why}); {start}", ModelErrorKind.CONNECTION)
    return model_error(
        model,
        url,
        f"the server accepted the connection but gave no answer within {waited:g}s ({why}); it is busy {busy}: "
        "retry when it is idle, or raise model.timeout",
        ModelErrorKind.BUSY,
    )
