"""Which runs the result cache serves (``cache=auto|true|false``): answers only for the same
weights, never for a repeated sampled run unless asked. Runs against the scripted server (a fake)."""

from __future__ import annotations

import logging

import pytest

from koderz.errors import ConfigError
from koderz.result_cache import run_key, uncacheable
from koderz.sandbox.mechanism import Mechanism
from tests.conftest import plan, run_job
from tests.support.fakes.scripted_server import Rules, ScriptedServer, fenced

RIGHT = fenced("def add(x: int, y: int):\n    return x + y\n")
OLLAMA = "qwen2.5-coder:32b"
QUIET = ("spec.enabled=false", "problems=[HumanEval/53]", "tracking=off", "cortex=off")


def test_a_hosted_api_model_is_cached_by_default() -> None:
    assert uncacheable(plan("model=gpt-4o-mini"), {"coder": None}) is None


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        (("model=gpt-4o-mini", "model.base_url=http://127.0.0.1:8080/v1"), "no digest of its weights"),
        (("model=gpt-4o-mini", "model.base_url=http://localhost:8080/v1"), "no digest of its weights"),
        (("model=gpt-4o-mini", "model.base_url=http://192.168.1.20:8000/v1"), "no digest of its weights"),
        (("model=qwen2.5-coder-32b",), "no digest of its weights"),
        (("model=gpt-4o-mini", "temperature=0.8"), "temperature > 0"),
        (("model=gpt-5-mini",), "or the server's default"),  # a reasoning model at its default temperature
        (("model=gpt-4o-mini", "n_samples=5"), "n_samples=5"),
        (("model=gpt-4o-mini", "cache=false"), "cache=false"),
        (("model=reference",), "built-in"),
    ],
)
def test_the_default_refuses_local_servers_without_a_digest_and_sampled_runs(overrides, why) -> None:
    reason = uncacheable(plan(*overrides), {"coder": None})
    assert reason is not None and why in reason


def test_asking_for_the_cache_allows_local_servers_and_sampled_runs() -> None:
    local = plan("model=gpt-4o-mini", "model.base_url=http://127.0.0.1:8080/v1", "n_samples=5", "cache=true")
    assert uncacheable(local, {"coder": None}) is None
    assert uncacheable(plan("model=reference", "cache=true"), {}) is not None  # built-ins cost nothing


def test_a_local_server_with_a_digest_is_cached_and_the_digest_is_in_the_key() -> None:
    ollama = plan("model=qwen2.5-coder-32b", "spec.enabled=false")
    assert uncacheable(ollama, {"coder": "sha256:aaa"}) is None
    one = run_key(ollama, "v1", Mechanism.ROOT_NAMESPACES, {"coder": "sha256:aaa"})
    assert one != run_key(ollama, "v1", Mechanism.ROOT_NAMESPACES, {"coder": "sha256:bbb"})
    assert one["coder"]["weights"] == "sha256:aaa"


def test_a_cache_value_other_than_auto_true_false_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"cache=maybe: choose one of auto, true, false"):
        plan("cache=maybe")


async def test_ollama_answers_are_served_again_only_for_the_same_weights(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["model=qwen2.5-coder-32b", *QUIET]
    async with ScriptedServer(Rules([], default=RIGHT), models=[OLLAMA], digest="a" * 64) as server:
        where = f"model.host={server.url}"
        first = await run_job(tmp_path / "first", *args, where)
        again = await run_job(tmp_path / "again", *args, where)
        assert len(server.chat_requests) == 1
        server.digest = "b" * 64  # other weights behind the same name
        swapped = await run_job(tmp_path / "swapped", *args, where)
        assert len(server.chat_requests) == 2
    assert (first.summary.cached, again.summary.cached, swapped.summary.cached) == (0, 1, 0)


async def test_a_local_openai_server_is_not_cached_by_default_and_the_log_says_why(
    tmp_path, monkeypatch, caplog
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    async with ScriptedServer(Rules([], default=RIGHT)) as server:
        args = ["model=gpt-4o-mini", f"model.base_url={server.openai_url}", *QUIET]
        with caplog.at_level(logging.INFO, logger="koderz.runner"):
            await run_job(tmp_path / "first", *args)
            second = await run_job(tmp_path / "second", *args)
        assert len(server.chat_requests) == 2
        asked = await run_job(tmp_path / "asked", *args, "cache=true")
        served = await run_job(tmp_path / "served", *args, "cache=true")
        assert len(server.chat_requests) == 3
    assert second.summary.cached == 0 and (asked.summary.cached, served.summary.cached) == (0, 1)
    assert "result cache not used: gpt-4o-mini at a local server that gives no digest" in caplog.text
