"""Model time as the server reports it (llama.cpp ``timings``, OpenAI's processing header,
Ollama's durations) and the client's queue wait as its own category. Against the scripted
server (a fake); the real llama-cpp-python server is in test_real_server.py."""

from __future__ import annotations

import asyncio
import json

import pytest

from koderz.models.registry import build_model
from koderz.records import RunTiming
from koderz.timing import format_report
from tests.conftest import run_job
from tests.support.fakes.scripted_server import Reply, Rules, ScriptedServer, fenced
from tests.support.model_configs import context, model_cfg, user

RIGHT = fenced("def add(x: int, y: int):\n    return x + y\n")


async def test_llama_cpp_timings_are_the_server_time(start_server, pool) -> None:
    server = await start_server(lambda *_: Reply(text="hi", timings={"prompt_ms": 250.0, "predicted_ms": 1250.0}))
    completion = await build_model(model_cfg("openai", server), pool).complete(user("hello"), context())
    assert completion.server_time == pytest.approx(1.5)


async def test_the_openai_processing_header_is_the_server_time(start_server, pool) -> None:
    server = await start_server(lambda *_: Reply(text="hi", headers={"openai-processing-ms": "420"}))
    completion = await build_model(model_cfg("openai", server), pool).complete(user("hello"), context())
    assert completion.server_time == pytest.approx(0.42)


@pytest.mark.parametrize("header", [{}, {"openai-processing-ms": "soon"}, {"openai-processing-ms": "-3"}])
async def test_no_or_a_garbled_report_leaves_the_server_time_unknown(start_server, pool, header) -> None:
    server = await start_server(lambda *_: Reply(text="hi", headers=header))
    completion = await build_model(model_cfg("openai", server), pool).complete(user("hello"), context())
    assert completion.server_time is None


async def test_ollama_eval_durations_are_the_server_time(start_server, pool) -> None:
    server = await start_server(lambda *_: Reply(text="hi"))  # prompt_eval and eval: 0.5 ms each
    completion = await build_model(model_cfg("ollama", server), pool).complete(user("hello"), context())
    assert completion.server_time == pytest.approx(0.001)


async def test_a_one_slot_queue_is_timed_apart_from_the_model_and_the_server_time_is_summed(
    tmp_path, monkeypatch
) -> None:
    """Three problems at once against one slot (max_concurrency=1), each answer 0.3 s: the calls
    wait in koderz's queue, and that wait is the ``queue`` category, not model time."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    reply = Reply(text=RIGHT, delay=0.3, timings={"prompt_ms": 10.0, "predicted_ms": 290.0})
    async with ScriptedServer(Rules([], default=reply)) as server:
        await run_job(
            tmp_path / "run",
            "model=gpt-4o-mini",
            f"model.base_url={server.openai_url}",
            "model.max_concurrency=1",
            "spec.enabled=false",
            "problems=[HumanEval/0,HumanEval/1,HumanEval/2]",
            "concurrency=3",
            "tracking=off",
            "cortex=off",
            "cache=false",
        )
        assert server.max_in_flight == 1
    timing = json.loads((tmp_path / "run" / "timing.json").read_text())
    queue = timing["categories"]["queue"]
    assert queue["count"] >= 2 and queue["busy"] > 0  # two calls waited for the one held slot
    assert timing["model_server"] == pytest.approx(0.9) and timing["model_server_calls"] == 3
    # the model time no longer holds the wait: at most one call at a time was being answered
    assert timing["categories"]["iteration"]["mean_in_flight"] < 1.5
    assert timing["model_busy"] == pytest.approx(timing["categories"]["iteration"]["busy"])
    assert "Model server:   0.90s  (its own time, on 3 calls)" in format_report(RunTiming.model_validate(timing))


async def test_a_server_that_reports_no_time_leaves_the_server_time_unknown(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    async with ScriptedServer(Rules([], default=RIGHT)) as server:
        await asyncio.wait_for(
            run_job(
                tmp_path / "run",
                "model=gpt-4o-mini",
                f"model.base_url={server.openai_url}",
                "spec.enabled=false",
                "problems=[HumanEval/53]",
                "tracking=off",
                "cortex=off",
                "cache=false",
            ),
            300,
        )
    timing = json.loads((tmp_path / "run" / "timing.json").read_text())
    assert timing["model_server"] is None and timing["model_server_calls"] == 0
    assert "Model server" not in format_report(RunTiming.model_validate(timing))
