"""Endpoint pieces without a server: how settings combine, how causes read, what counts as a
connection failure (real httpx/OS exceptions, raised and chained as the SDKs do)."""

from __future__ import annotations

import httpx
import pytest

from koderz.errors import ModelError, ModelErrorKind
from koderz.models.endpoint import EndpointSettings
from koderz.models.failure import listed
from koderz.models.transport import cause, connection_failed, read_timed_out


def raised_from(outer: Exception, inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except Exception as caught:
        return caught


def test_models_sharing_a_server_get_the_strictest_limit_and_the_longest_wait():
    coder = EndpointSettings(max_concurrency=None, breaker_failures=5, breaker_wait=30, first_probe=0.5)
    reviewer = EndpointSettings(max_concurrency=2, breaker_failures=3, breaker_wait=120, first_probe=1.0)
    assert coder.shared_with(reviewer) == EndpointSettings(2, 3, 120, 0.5)
    assert coder.shared_with(EndpointSettings()).max_concurrency is None


def test_refused_reset_and_dropped_are_connection_failures_read_timeouts_are_not():
    refused = raised_from(httpx.ConnectError("All connection attempts failed"), ConnectionRefusedError(111, "refused"))
    dropped = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    reset = httpx.ReadError("Connection reset by peer")
    slow = httpx.ReadTimeout("")
    assert all(connection_failed(e) for e in (refused, dropped, reset, ConnectionError("ollama: refused")))
    assert not connection_failed(slow) and read_timed_out(slow)
    assert not connection_failed(ValueError("malformed"))


def test_the_cause_is_the_innermost_message_or_the_transport_errors_type():
    refused = raised_from(RuntimeError("Connection error."), ConnectionRefusedError(111, "Connection refused"))
    assert cause(refused) == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert cause(raised_from(RuntimeError("Request timed out."), httpx.ReadTimeout(""))) == "ReadTimeout"


def test_long_model_lists_are_shortened():
    assert listed(["a", "b"]) == "a, b"
    assert listed([str(i) for i in range(10)]) == "0, 1, 2, 3, 4, 5, 6, 7, ... (+2 more)"


def test_model_error_keeps_its_kind_through_pickling():
    import pickle

    error = pickle.loads(pickle.dumps(ModelError("model m at u: endpoint down", ModelErrorKind.ENDPOINT_DOWN)))
    assert error.kind is ModelErrorKind.ENDPOINT_DOWN and str(error) == "model m at u: endpoint down"
    assert ModelError("no sample").kind == "other"
    with pytest.raises(ValueError):
        ModelError("x", "no-such-kind")  # type: ignore[arg-type]
