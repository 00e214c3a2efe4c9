"""Result cache hits for API models, and the timing figures a run writes."""

from __future__ import annotations

import json

from koderz.records import RunFolder
from koderz.result_cache import run_key
from tests.conftest import plan, run_job
from tests.fakes.scripted_server import Rules, ScriptedServer, fenced

RIGHT = fenced("def add(x: int, y: int):\n    return x + y\n")
RAISES = fenced("def add(x: int, y: int):\n    raise ValueError('no')\n")


def one_problem_against(url: str) -> list[str]:
    """HumanEval/53 with gpt-4o-mini's config pointed at the scripted server, no spec, memory or tracking."""
    return [
        "model=gpt-4o-mini",
        f"model.base_url={url}",
        "spec.enabled=false",
        "problems=[HumanEval/53]",
        "tracking=off",
        "cortex=off",
    ]


async def test_a_repeated_run_is_served_from_the_cache_without_model_calls(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    async with ScriptedServer(Rules([(r"specification", ["SPEC"])], default=RIGHT)) as server:
        args = one_problem_against(server.openai_url)
        first = await run_job(tmp_path / "first", *args)
        calls = len(server.chat_requests)
        second = await run_job(tmp_path / "second", *args)
        assert len(server.chat_requests) == calls == 1
        changed = await run_job(tmp_path / "third", *args, "prompt.cot=false")
        assert len(server.chat_requests) == 2  # a different prompt setting is a different result
        await run_job(tmp_path / "fourth", *args, "cache=false")
        assert len(server.chat_requests) == 3
    assert (first.summary.cached, second.summary.cached, changed.summary.cached) == (0, 1, 0)
    assert first.summary.passed == second.summary.passed == 1
    # the cached problem's tokens and cost were saved, not spent again
    assert first.summary.tokens.input > 0 and second.summary.tokens.input == 0
    assert second.summary.saved_tokens == first.summary.tokens and second.summary.saved_cost == first.summary.cost.total
    (record,) = RunFolder(tmp_path / "second").records()
    assert record.cached and record.tests_total > 0
    assert "def add" in (tmp_path / "second" / "samples.jsonl").read_text()


async def test_a_candidate_that_raises_is_a_verdict_and_is_cached(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    async with ScriptedServer(Rules([], default=RAISES)) as server:
        args = one_problem_against(server.openai_url)
        first = await run_job(tmp_path / "first", *args)
        calls = len(server.chat_requests)
        second = await run_job(tmp_path / "second", *args)
        assert len(server.chat_requests) == calls  # no HTTP call: served from the cache
    assert first.summary.statuses == {"error": 1} and first.summary.answered == 1 and first.summary.unanswered == 0
    assert second.summary.cached == 1 and second.summary.statuses == {"error": 1}


async def test_timing_figures_add_up_and_reach_results_json(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    outcome = await run_job(
        tmp_path / "run",
        "end=8",
        "concurrency=4",
        "tracking=off",
        "cortex=persistent",
        "mode=iterative",
        f"timing.export={tmp_path / 'timing-export.json'}",
        "timing.report=true",
    )
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    timing = json.loads((tmp_path / "run" / "timing.json").read_text())
    assert results["timing"] == timing == json.loads((tmp_path / "timing-export.json").read_text())
    assert timing["total_duration"] == outcome.summary.duration
    assert abs(timing["total_duration"] - timing["tracked_wall"] - timing["overhead"]) < 1e-9
    assert timing["overhead"] >= 0
    assert all(p["end"] - p["start"] <= timing["total_duration"] for p in timing["phases"])
    names = set(timing["phase_totals"])
    assert {"launch", "spec_generation", "iteration_generate", "iteration_test", "cortex_remember"} <= names
    assert {"cortex_start_session", "cortex_open", "cortex_close"} <= names
    assert set(timing["per_problem"]) == {f"HumanEval/{i}" for i in range(8)}
    for category in timing["categories"].values():
        assert category["wall"] <= category["busy"] + 1e-9
    assert timing["categories"]["test"]["busy"] == timing["sandbox_busy"] > 0  # the sandbox has its own category
    assert timing["max_in_flight"] > 1  # four problems at a time overlapped


def test_the_cache_key_ignores_settings_that_cannot_change_a_zero_shot_result() -> None:
    base = run_key(plan("model=gpt-4o-mini"), "v1")
    assert run_key(plan("model=gpt-4o-mini", "checkpoints.enabled=false"), "v1") == base
    assert run_key(plan("model=gpt-4o-mini", "max_iterations=3"), "v1") == base
    assert run_key(plan("model=gpt-4o-mini", "mode=iterative", "checkpoints.enabled=false"), "v1") != run_key(
        plan("model=gpt-4o-mini", "mode=iterative"), "v1"
    )
    assert run_key(plan("model=gpt-4o-mini"), "v2") != base
