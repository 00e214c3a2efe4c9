"""The per-server Endpoint through the real SDK clients against the scripted server: the circuit
breaker (trip, give up, recover) and the concurrency limit shared by every model on a server.

Assertions count requests the server saw, never durations."""

from __future__ import annotations

import asyncio

import pytest

from koderz.errors import ModelError
from koderz.models.endpoint import BreakerState
from koderz.models.registry import build_model
from tests.support.fakes.scripted_server import Reply, Rules
from tests.support.model_configs import context, endpoint_of, model_cfg, until, user

CHAT = {"openai": "openai.chat", "ollama": "ollama.chat"}
PROBE = {"openai": "openai.models", "ollama": "ollama.tags"}


@pytest.fixture(params=["openai", "ollama"])
def provider(request: pytest.FixtureRequest) -> str:
    return request.param


async def test_breaker_stops_sending_after_n_connection_failures_and_then_fails_every_call_at_once(
    provider, start_server, pool
):
    server = await start_server(lambda body, route, i: "never answered")
    server.dropping = True  # every request, probes too: a server that crashes on each one
    model = build_model(model_cfg(provider, server, max_retries=5, breaker_failures=3, breaker_wait=0.2), pool)

    with pytest.raises(ModelError) as first:
        await model.complete(user("x"), context())
    later = []
    for i in range(5):
        with pytest.raises(ModelError) as info:
            await model.complete(user(str(i)), context())
        later.append(info.value.kind)

    assert first.value.kind == "endpoint_down"
    assert "endpoint down" in str(first.value) and "3 connection failures" in str(first.value)
    assert server.url in str(first.value)
    assert server.hits(CHAT[provider]) == 3  # 5 retries were allowed; the breaker sent 3, then nothing
    assert later == ["endpoint_down"] * 5
    assert server.hits(PROBE[provider]) >= 1  # it was probed before giving up
    status = endpoint_of(model).status()
    assert status.state is BreakerState.DOWN and status.since is not None and status.failures == 3


async def test_a_killed_server_gets_no_request_after_the_breaker_gave_up_even_once_it_is_back(
    provider, start_server, pool
):
    server = await start_server(lambda body, route, i: "ok")
    model = build_model(model_cfg(provider, server, max_retries=5, breaker_failures=3, breaker_wait=0.2), pool)
    assert (await model.complete(user("before"), context())).text == "ok"

    await server.kill()
    with pytest.raises(ModelError) as during:
        await model.complete(user("during"), context())
    await server.restart()  # same port
    with pytest.raises(ModelError) as after:
        await model.complete(user("after"), context())

    assert during.value.kind == after.value.kind == "endpoint_down"
    assert "Connect" in str(during.value)  # the last cause: refused connections
    assert server.hits(CHAT[provider]) == 1  # only the call before the kill reached it


async def test_calls_waiting_on_an_open_breaker_resume_when_the_server_comes_back(provider, start_server, pool):
    server = await start_server(lambda body, route, i: "ok")
    model = build_model(model_cfg(provider, server, max_retries=1, breaker_failures=2, breaker_wait=120), pool)
    endpoint = endpoint_of(model)

    await server.kill()
    calls = asyncio.gather(*(model.complete(user(str(i)), context()) for i in range(4)))
    async with asyncio.timeout(60):
        await until(lambda: endpoint.state is BreakerState.OPEN and endpoint.status().waiting == 4)
    await server.restart()
    async with asyncio.timeout(60):
        completions = await calls

    assert [c.text for c in completions] == ["ok"] * 4
    assert all(c.queued > 0 for c in completions)  # they waited for the breaker, not in latency
    assert server.hits(CHAT[provider]) == 4  # each sent once after the restart (none reached the dead server)
    status = endpoint.status()
    assert status.state is BreakerState.CLOSED and status.since is None and status.failures == 0


async def test_only_consecutive_connection_failures_count_an_answer_resets_them_a_timeout_does_not(
    provider, start_server, pool
):
    drop, answer, late = Reply(fault="drop"), Reply(status=400, error="bad request"), Reply("late", delay=5.0)
    server = await start_server(Rules(default="ok", faults=[drop, answer, drop, late, answer, drop, late, drop]))
    # retry_backoff = the first probe's delay: long, so the open state is seen before any probe
    cfg = model_cfg(provider, server, max_retries=0, breaker_failures=2, timeout=0.3, retry_backoff=30)
    model = build_model(cfg, pool)

    kinds, states = [], []
    for i in range(8):
        with pytest.raises(ModelError) as info:
            await model.complete(user(str(i)), context())
        kinds.append(info.value.kind)
        states.append(endpoint_of(model).state.value)

    assert kinds == ["connection", "http", "connection", "timeout", "http", "connection", "timeout", "connection"]
    assert states == ["closed"] * 7 + ["open"]  # drop, timeout, drop: two failures in a row
    assert server.hits(CHAT[provider]) == 8


async def test_max_concurrency_one_keeps_one_request_in_flight_across_every_model_on_the_server(
    provider, start_server, pool
):
    server = await start_server(lambda body, route, i: "ok", latency=0.02)
    coder = build_model(model_cfg(provider, server, name="coder", max_concurrency=1), pool)
    reviewer = build_model(model_cfg(provider, server, name="reviewer"), pool)  # no limit of its own

    completions = await asyncio.gather(
        *(model.complete(user(str(i)), context()) for i in range(2) for model in (coder, reviewer))
    )

    assert coder.endpoint is reviewer.endpoint
    assert [c.text for c in completions] == ["ok"] * 4
    assert server.hits(CHAT[provider]) == 4
    assert server.max_in_flight == 1


async def test_calls_beyond_the_limit_wait_at_the_client_until_a_slot_frees(provider, start_server, pool):
    server = await start_server(lambda body, route, i: "ok")
    server.hold()
    model = build_model(model_cfg(provider, server, max_concurrency=2), pool)

    calls = asyncio.gather(*(model.complete(user(str(i)), context()) for i in range(5)))
    async with asyncio.timeout(30):
        await server.until_in_flight(2)
        await until(lambda: endpoint_of(model).status().waiting == 3)
    in_flight_while_held = server.in_flight
    server.release()
    completions = await calls

    assert in_flight_while_held == 2
    assert [c.text for c in completions] == ["ok"] * 5
    assert server.max_in_flight == 2


async def test_closing_the_pool_fails_calls_still_waiting_on_an_open_breaker(start_server, pool):
    server = await start_server(lambda body, route, i: "ok")
    model = build_model(model_cfg("openai", server, max_retries=1, breaker_failures=1, breaker_wait=600), pool)
    await server.kill()

    call = asyncio.create_task(model.complete(user("x"), context()))
    async with asyncio.timeout(60):
        await until(lambda: endpoint_of(model).status().waiting == 1)
    await pool.aclose()  # the run ends while the call waits for a server that stays dead

    with pytest.raises(ModelError) as info:
        async with asyncio.timeout(60):
            await call
    assert info.value.kind == "endpoint_down"
