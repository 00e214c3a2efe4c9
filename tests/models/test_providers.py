"""Both providers through the real ``openai`` / ``ollama`` SDK clients against the scripted server."""

from __future__ import annotations

import asyncio

import pytest

from koderz.errors import ModelError
from koderz.models.pricing import cost_of
from koderz.models.registry import build_model
from koderz.vocab import Phase
from tests.support.fakes.scripted_server import Reply, Rules, fenced
from tests.support.model_configs import KEY_ENV, context, free_port, model_cfg, user

CHAT = {"openai": "openai.chat", "ollama": "ollama.chat"}
FAST_RETRY = {"retry-after-ms": "1"}  # the openai SDK honours it; our Ollama backoff is cfg.retry_backoff


@pytest.fixture(params=["openai", "ollama"])
def provider(request: pytest.FixtureRequest) -> str:
    return request.param


async def test_completion_returns_text_usage_latency_and_cost_is_usage_times_price(provider, start_server, pool):
    answer = fenced("def add(a, b):\n    return a + b", "Add the two numbers.")
    server = await start_server(
        lambda body, route, i: Reply(answer, input_tokens=1000, output_tokens=200, cached_tokens=400)
    )
    cfg = model_cfg(provider, server)
    model = build_model(cfg, pool)

    completion = await model.complete(user("Write add."), context())

    assert completion.text == answer
    assert completion.model == "scripted-model"
    assert completion.latency > 0
    cached = 400 if provider == "openai" else 0  # Ollama reports no cached tokens
    assert completion.usage.input_tokens == 1000
    assert completion.usage.output_tokens == 200
    assert completion.usage.cached_input_tokens == cached
    expected = ((1000 - cached) * 1.0 + cached * 0.5 + 200 * 4.0) / 1e6
    assert cost_of(completion.usage, cfg) == pytest.approx(expected)
    assert server.hits(CHAT[provider]) == 1


async def test_openai_request_carries_sampling_settings_and_the_configured_max_tokens_param(start_server, pool):
    server = await start_server(lambda body, route, i: "ok")
    legacy = build_model(model_cfg("openai", server, max_tokens=77, temperature=0.2, seed=7), pool)
    reasoning = build_model(
        model_cfg("openai", server, name="gpt-5-nano", max_tokens=99, max_tokens_param="max_completion_tokens"),
        pool,
    )

    await legacy.complete(user("a"), context())
    await reasoning.complete(user("b"), context())

    first, second = (r.body for r in server.chat_requests)
    assert first["max_tokens"] == 77 and first["temperature"] == 0.2 and first["seed"] == 7
    assert second["max_completion_tokens"] == 99
    assert "max_tokens" not in second and "temperature" not in second and "seed" not in second


async def test_ollama_request_carries_options_and_keep_alive(start_server, pool):
    server = await start_server(lambda body, route, i: "ok")
    cfg = model_cfg(
        "ollama",
        server,
        name="qwen2.5-coder:32b",
        num_ctx=5120,
        max_tokens=64,
        temperature=0.0,
        seed=3,
        keep_alive="5m",
    )

    await build_model(cfg, pool).complete(user("hi"), context())

    body = server.chat_requests[0].body
    assert body["model"] == "qwen2.5-coder:32b"
    assert body["options"] == {"num_ctx": 5120, "num_predict": 64, "temperature": 0.0, "seed": 3}
    assert body["keep_alive"] == "5m"
    assert body["stream"] is False


@pytest.mark.parametrize("first,second", [(429, 503), (503, 429)])
async def test_busy_server_429_and_503_is_retried_then_succeeds(provider, start_server, pool, first, second):
    server = await start_server(
        Rules(
            default="finally",
            faults=[Reply(status=first, headers=FAST_RETRY), Reply(status=second, headers=FAST_RETRY)],
        )
    )
    model = build_model(model_cfg(provider, server, max_retries=2), pool)

    completion = await model.complete(user("x"), context())

    assert completion.text == "finally"
    assert server.hits(CHAT[provider]) == 3


async def test_non_retryable_400_is_reported_once_with_model_endpoint_and_status(provider, start_server, pool):
    server = await start_server(lambda body, route, i: Reply(status=400, error="bad request: messages too long"))
    model = build_model(model_cfg(provider, server, max_retries=3), pool)

    with pytest.raises(ModelError) as info:
        await model.complete(user("x"), context())

    message = str(info.value)
    assert server.hits(CHAT[provider]) == 1
    assert "\n" not in message
    assert "scripted-model" in message and server.url in message and "HTTP 400" in message
    assert "messages too long" in message


async def test_persistent_503_becomes_model_error_after_all_retries(provider, start_server, pool):
    server = await start_server(lambda body, route, i: Reply(status=503, headers=FAST_RETRY))
    model = build_model(model_cfg(provider, server, max_retries=2), pool)

    with pytest.raises(ModelError, match=r"HTTP 503.*after 2 retries") as info:
        await model.complete(user("x"), context())

    assert info.value.kind == "http"

    assert server.hits(CHAT[provider]) == 3


@pytest.mark.parametrize("fault", ["malformed", "drop"])
async def test_malformed_json_or_dropped_connection_is_retried_then_model_error(provider, fault, start_server, pool):
    server = await start_server(lambda body, route, i: Reply(fault=fault))
    model = build_model(model_cfg(provider, server, max_retries=1), pool)

    with pytest.raises(ModelError) as info:
        await model.complete(user("x"), context())

    assert server.hits(CHAT[provider]) == 2
    assert "after 1 retries" in str(info.value)
    assert ("malformed" in str(info.value)) == (fault == "malformed")
    assert info.value.kind == {"malformed": "malformed", "drop": "connection"}[fault]


async def test_a_transient_drop_is_survived(provider, start_server, pool):
    server = await start_server(Rules(default="recovered", faults=[Reply(fault="drop"), Reply(fault="malformed")]))
    model = build_model(model_cfg(provider, server, max_retries=2), pool)

    assert (await model.complete(user("x"), context())).text == "recovered"
    assert server.hits(CHAT[provider]) == 3


async def test_timeout_is_retried_then_model_error(provider, start_server, pool):
    server = await start_server(lambda body, route, i: Reply("late", delay=5.0))
    model = build_model(model_cfg(provider, server, timeout=0.2, max_retries=1), pool)

    with pytest.raises(ModelError, match=r"timed out") as info:
        await model.complete(user("x"), context())

    assert info.value.kind == "timeout"

    assert server.hits(CHAT[provider]) == 2


async def test_preflight_passes_for_a_served_model(provider, start_server, pool):
    server = await start_server(lambda body, route, i: "ok", models=["scripted-model"])
    await build_model(model_cfg(provider, server), pool).preflight()
    assert server.requests  # it really asked the server


async def test_preflight_unknown_model_names_model_endpoint_and_fix(provider, start_server, pool):
    server = await start_server(lambda body, route, i: "ok", models=["some-other-model"])
    model = build_model(model_cfg(provider, server, name="no-such-model"), pool)

    with pytest.raises(ModelError) as info:
        await model.preflight()

    message = str(info.value)
    assert info.value.kind == "unknown_model"
    assert "no-such-model" in message and server.url in message and "some-other-model" in message
    fix = "ollama pull no-such-model" if provider == "ollama" else "set model.name to one of them"
    assert fix in message


async def test_preflight_absent_server_says_cannot_connect_with_the_cause_and_the_fix(provider, pool):
    port = free_port()
    cfg = model_cfg(provider, None, base_url=f"http://127.0.0.1:{port}/v1", host=f"http://127.0.0.1:{port}")

    with pytest.raises(ModelError) as info:
        await build_model(cfg, pool).preflight()

    message = str(info.value)
    assert info.value.kind == "connection"
    assert "cannot connect" in message and f"127.0.0.1:{port}" in message and "scripted-model" in message
    assert "Connection refused" in message or "Connect call failed" in message  # the OS's own words
    assert ("model.host" if provider == "ollama" else "model.base_url") in message


async def test_preflight_missing_api_key_fails_before_any_request(start_server, pool, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    server = await start_server(lambda body, route, i: "ok")
    model = build_model(model_cfg("openai", server), pool)

    with pytest.raises(ModelError) as info:
        await model.preflight()

    assert f"{KEY_ENV} is not set" in str(info.value)
    assert "scripted-model" in str(info.value) and server.openai_url in str(info.value)
    assert server.requests == []


async def test_openai_without_key_env_sends_a_placeholder_for_keyless_servers(start_server, pool):
    server = await start_server(lambda body, route, i: "ok")
    model = build_model(model_cfg("openai", server, api_key_env=None), pool)
    assert (await model.complete(user("x"), context())).text == "ok"


async def test_models_on_one_endpoint_share_one_client_and_reuse_connections(provider, start_server, pool):
    server = await start_server(lambda body, route, i: "ok")
    spec_model = build_model(model_cfg(provider, server, name="a"), pool)
    attempt_model = build_model(model_cfg(provider, server, name="b"), pool)

    for _ in range(3):
        await spec_model.complete(user("x"), context(Phase.SPEC))
        await attempt_model.complete(user("y"), context())

    assert len(pool) == 1
    assert server.hits(CHAT[provider]) == 6
    assert server.connections == 1  # kept alive and reused


async def test_without_a_limit_concurrent_calls_are_all_in_flight_at_once(provider, start_server, pool):
    server = await start_server(lambda body, route, i: "ok")
    server.hold()  # no answer until all 8 have arrived
    model = build_model(model_cfg(provider, server), pool)

    calls = asyncio.gather(*(model.complete(user(str(i)), context()) for i in range(8)))
    async with asyncio.timeout(30):
        await server.until_in_flight(8)
    server.release()
    completions = await calls

    assert [c.text for c in completions] == ["ok"] * 8
    assert server.max_in_flight == 8


async def test_iterative_feedback_and_guidance_reach_the_server(provider, start_server, pool):
    wrong = fenced("def add(a, b):\n    return a - b")
    right = fenced("def add(a, b):\n    return a + b")
    rules = Rules(
        rules=[
            ("Review the failed attempts", ["GUIDANCE: add, do not subtract."]),
            ("GUIDANCE", [right]),
            ("Write add", [wrong]),
        ]
    )
    server = await start_server(rules)
    model = build_model(model_cfg(provider, server), pool)

    first = await model.complete(user("Write add."), context(index=0))
    review = await model.complete(user("Review the failed attempts: AssertionError"), context(Phase.REVIEW))
    second = await model.complete(user(f"Write add. Feedback: AssertionError. {review.text}"), context(index=1))

    assert "a - b" in first.text and "a + b" in second.text
    assert "GUIDANCE: add, do not subtract." in server.chat_requests[-1].prompt


@pytest.mark.parametrize("served,ok", [("scripted-model", True), ("another-model", False)])
async def test_openai_preflight_probes_with_one_token_when_the_server_lists_no_models(start_server, pool, served, ok):
    server = await start_server(lambda body, route, i: "pong", models=[served], listing=False)
    model = build_model(model_cfg("openai", server, max_tokens_param="max_completion_tokens"), pool)

    if ok:
        await model.preflight()
    else:
        with pytest.raises(ModelError, match=r"unknown model .*HTTP 404"):
            await model.preflight()

    probe = server.chat_requests[0].body
    assert probe["max_completion_tokens"] == 1 and probe["model"] == "scripted-model"


async def test_finish_reason_is_recorded_and_length_means_truncated(provider, start_server, pool):
    server = await start_server(
        Rules(default="def add(a, b):\n    return a + b", faults=[Reply("def add(a,", finish_reason="length")])
    )
    model = build_model(model_cfg(provider, server, max_tokens=4), pool)

    cut = await model.complete(user("Write add."), context())
    whole = await model.complete(user("Write add."), context())

    assert (cut.finish_reason, cut.truncated) == ("length", True)
    assert (whole.finish_reason, whole.truncated) == ("stop", False)


async def test_openai_preflight_names_a_base_url_without_its_version_path(start_server, pool):
    server = await start_server(lambda body, route, i: "pong", models=["scripted-model"])
    model = build_model(model_cfg("openai", server, base_url=server.url), pool)

    with pytest.raises(ModelError, match=r"lacks the API version path .*model\.base_url=.*/v1"):
        await model.preflight()


def test_a_url_names_its_api_version_or_not() -> None:
    from koderz.models.openai_client import versioned

    assert versioned("http://127.0.0.1:8080/v1") and versioned("https://host/openai/v1beta")
    assert not versioned("http://127.0.0.1:8080") and not versioned("http://host/api")
