"""Result cache hits for API models, and the timing figures a run writes."""

from __future__ import annotations

import json

from koderz.runner import Runner
from tests.conftest import compose_config
from tests.fakes.scripted_server import Rules, ScriptedServer, fenced

RIGHT = fenced("def add(x: int, y: int):\n    return x + y\n")


async def test_a_repeated_run_is_served_from_the_cache_without_model_calls(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    async with ScriptedServer(Rules([(r"specification", ["SPEC"])], default=RIGHT)) as server:
        args = [
            "model=gpt-4o-mini",
            f"model.base_url={server.openai_url}",
            "spec.enabled=false",
            "problems=[HumanEval/53]",
            "tracking=off",
            "cortex=off",
        ]
        first = await Runner(compose_config(*args), tmp_path / "first").run()
        calls = len(server.chat_requests)
        second = await Runner(compose_config(*args), tmp_path / "second").run()
        assert len(server.chat_requests) == calls == 1
        changed = await Runner(compose_config(*args, "prompt.cot=false"), tmp_path / "third").run()
        assert len(server.chat_requests) == 2  # a different prompt setting is a different result
        await Runner(compose_config(*args, "cache=false"), tmp_path / "fourth").run()
        assert len(server.chat_requests) == 3
    assert (first["cached"], second["cached"], changed["cached"]) == (0, 1, 0)
    assert first["passed"] == second["passed"] == 1
    record = json.loads((tmp_path / "second" / "results.jsonl").read_text())
    assert record["cached"] is True and record["tests_total"] > 0
    assert "def add" in (tmp_path / "second" / "samples.jsonl").read_text()


async def test_timing_figures_add_up_and_reach_results_json(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = compose_config(
        "end=8",
        "concurrency=4",
        "tracking=off",
        "cortex=persistent",
        "mode=iterative",
        f"timing.export={tmp_path / 'timing-export.json'}",
        "timing.report=true",
    )
    await Runner(cfg, tmp_path / "run").run()
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    timing = json.loads((tmp_path / "run" / "timing.json").read_text())
    assert results["timing"] == timing == json.loads((tmp_path / "timing-export.json").read_text())
    busy = sum(c["busy"] for c in timing["categories"].values())
    assert busy == timing["tracked_duration"]
    assert abs(timing["total_duration"] - timing["tracked_duration"] - timing["overhead"]) < 1e-9
    names = set(timing["phase_totals"])
    assert {
        "spec_generation",
        "iteration_generate",
        "iteration_test",
        "cortex_remember",
        "cortex_start_session",
    } <= names
    assert set(timing["per_problem"]) == {f"HumanEval/{i}" for i in range(8)}
    for category in timing["categories"].values():
        assert category["wall"] <= category["busy"] + 1e-9
    assert timing["max_in_flight"] > 1 and timing["concurrent"] is True  # four problems at a time overlapped


def test_the_cache_key_ignores_settings_that_cannot_change_a_zero_shot_result() -> None:
    from koderz.result_cache import run_key

    base = run_key(compose_config("model=gpt-4o-mini"), "v1")
    assert run_key(compose_config("model=gpt-4o-mini", "checkpoints.enabled=false"), "v1") == base
    assert run_key(compose_config("model=gpt-4o-mini", "max_iterations=3"), "v1") == base
    assert run_key(compose_config("model=gpt-4o-mini", "mode=iterative", "checkpoints.enabled=false"), "v1") != run_key(
        compose_config("model=gpt-4o-mini", "mode=iterative"), "v1"
    )
    assert run_key(compose_config("model=gpt-4o-mini"), "v2") != base
