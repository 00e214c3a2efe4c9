"""Preflight through the real SDK clients against the scripted server: busy vs absent servers,
the model list, keys (none configured vs rejected), once per distinct endpoint and model."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from koderz.errors import ModelError
from koderz.models.builtin import ReferenceModel
from koderz.models.config import ModelConfig
from koderz.models.credentials import check_credentials
from koderz.models.preflight import preflight_all
from koderz.models.registry import ClientPool, build_model
from tests.support.model_configs import KEY_ENV, context, model_cfg, user

ROOT = Path(__file__).resolve().parents[2]
PREFLIGHT_ROUTE = {"openai": "openai.models", "ollama": "ollama.show"}


@pytest.fixture(params=["openai", "ollama"])
def provider(request: pytest.FixtureRequest) -> str:
    return request.param


async def test_a_busy_single_slot_server_is_reported_busy_with_the_cause(provider, start_server, pool):
    server = await start_server(lambda body, route, i: "long answer", slots=1)
    server.hold()  # another client's long request occupies the only slot
    other_client = build_model(model_cfg(provider, server, timeout=30), pool)
    long_request = asyncio.create_task(other_client.complete(user("long"), context()))
    async with asyncio.timeout(30):
        await server.until_in_flight(1)

    with pytest.raises(ModelError) as info:
        await build_model(model_cfg(provider, server, timeout=0.5), pool).preflight()
    server.release()

    message = str(info.value)
    assert info.value.kind == "busy"
    assert "busy" in message and "accepted the connection" in message and "ReadTimeout" in message
    assert "cannot connect" not in message
    assert (await long_request).text == "long answer"


async def test_an_unknown_id_fails_against_a_server_that_lists_its_models_but_answers_any_id(start_server, pool):
    server = await start_server(lambda body, route, i: "I answer anything", models=["SmolLM2-135M"], any_model=True)
    model = build_model(model_cfg("openai", server, name="gpt-4o"), pool)

    with pytest.raises(ModelError) as info:
        await model.preflight()

    assert info.value.kind == "unknown_model"
    assert "gpt-4o" in str(info.value) and "the server lists SmolLM2-135M" in str(info.value)
    assert server.hits("openai.chat") == 0  # decided by the list, no tokens spent


async def test_a_listed_id_passes_with_one_request_and_no_chat_call(start_server, pool):
    server = await start_server(lambda body, route, i: "ok", models=["other", "scripted-model"], any_model=True)

    await build_model(model_cfg("openai", server), pool).preflight()

    assert [r.route for r in server.requests] == ["openai.models"]


async def test_a_long_model_list_is_shortened_in_the_message(provider, start_server, pool):
    server = await start_server(lambda body, route, i: "ok", models=[f"model-{i:02d}" for i in range(20)])

    with pytest.raises(ModelError) as info:
        await build_model(model_cfg(provider, server, name="absent"), pool).preflight()

    message = str(info.value)
    assert info.value.kind == "unknown_model"
    assert "model-00, model-01" in message and "model-07" in message and "model-08" not in message
    assert "(+12 more)" in message


async def test_no_key_configured_and_a_rejected_key_get_different_messages(start_server, pool, monkeypatch):
    server = await start_server(lambda body, route, i: "ok", models=["scripted-model"], api_key="sk-right")

    with pytest.raises(ModelError) as none_configured:
        await build_model(model_cfg("openai", server, api_key_env=None), pool).preflight()
    with pytest.raises(ModelError) as rejected:
        await build_model(model_cfg("openai", server), pool).preflight()  # $KODERZ_TEST_KEY = sk-test
    monkeypatch.setenv(KEY_ENV, "sk-right")
    fresh_pool = ClientPool()  # the pooled client keeps the key it was made with
    await build_model(model_cfg("openai", server), fresh_pool).preflight()
    await fresh_pool.aclose()

    assert none_configured.value.kind == "missing_key"
    assert "none is configured" in str(none_configured.value) and "model.api_key_env" in str(none_configured.value)
    assert "$None" not in str(none_configured.value)
    assert rejected.value.kind == "rejected"
    assert f"the key in ${KEY_ENV} was rejected (HTTP 401" in str(rejected.value)


async def test_an_unset_key_variable_is_reported_before_any_request(start_server, pool, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    server = await start_server(lambda body, route, i: "ok")
    cfg = model_cfg("openai", server)

    with pytest.raises(ModelError) as checked:
        check_credentials(cfg)
    with pytest.raises(ModelError) as preflighted:
        await build_model(cfg, pool).preflight()

    for info in (checked, preflighted):
        assert info.value.kind == "missing_key"
        assert f"environment variable {KEY_ENV} is not set" in str(info.value)
        assert "scripted-model" in str(info.value) and server.openai_url in str(info.value)
    assert server.requests == []


def test_check_credentials_passes_keyless_and_non_key_providers(monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    check_credentials(ModelConfig(provider="openai", name="local", api_key_env=None))
    check_credentials(ModelConfig(provider="ollama", name="qwen3", api_key_env=KEY_ENV))  # Ollama sends none
    check_credentials(ModelConfig(provider="reference", name="reference"))


def test_check_credentials_imports_no_provider_sdk(tmp_path):
    code = (
        "import sys, json\n"
        "from koderz.models.config import ModelConfig\n"
        "from koderz.models.credentials import check_credentials\n"
        "try:\n"
        "    check_credentials(ModelConfig(provider='openai', name='m', api_key_env='KODERZ_UNSET_KEY'))\n"
        "    kind = None\n"
        "except Exception as exc:\n"
        "    kind = exc.kind\n"
        "print(json.dumps({'kind': kind, 'sdks': sorted(m for m in ('openai', 'ollama', 'httpx', 'httpx2') "
        "if m in sys.modules)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert json.loads(out) == {"kind": "missing_key", "sdks": []}


async def test_preflight_all_checks_each_distinct_endpoint_and_model_once(provider, start_server, pool):
    server = await start_server(lambda body, route, i: "ok", models=["coder", "reviewer"])
    roles = [build_model(model_cfg(provider, server, name=name), pool) for name in ("coder", "coder", "coder")]
    roles.append(build_model(model_cfg(provider, server, name="reviewer"), pool))
    roles.append(ReferenceModel(model_cfg("reference", name="reference")))

    checks = await preflight_all(roles)

    assert checks == 2
    assert server.hits(PREFLIGHT_ROUTE[provider]) == 2


async def test_preflight_all_raises_the_failure(provider, start_server, pool):
    server = await start_server(lambda body, route, i: "ok", models=["coder"])
    roles = [build_model(model_cfg(provider, server, name=name), pool) for name in ("coder", "absent")]

    with pytest.raises(ModelError) as info:
        await preflight_all(roles)

    assert info.value.kind == "unknown_model" and "absent" in str(info.value)
