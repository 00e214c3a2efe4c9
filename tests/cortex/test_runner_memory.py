"""What a run stores in Cortex, spec reuse, and a server killed mid-run (real server processes)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest

from koderz.cortex.factory import open_memory_store
from koderz.plan import Plan
from koderz.runner import Runner
from tests.conftest import compose_config
from tests.support.cortex_processes import own_children


def verdicts(run_dir: Path) -> dict[str, tuple[bool, int, int]]:
    problems = json.loads((run_dir / "results.json").read_text())["problems"]
    return {p["task_id"]: (p["passed"], p["tests_passed"], p["tests_total"]) for p in problems}


async def export(cfg, tags: list[str]) -> list[dict]:
    async with open_memory_store(cfg.cortex, "check") as store:
        return await store.export(tags=tags)


async def test_a_run_stores_spec_attempts_results_and_summary(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = compose_config("end=3", "mode=iterative", "tracking=off", "cortex=persistent")
    summary = (await Runner(Plan.build(cfg), tmp_path / "run").run()).summary
    memories = await export(cfg, [summary.run_id])
    kinds = sorted(tag for m in memories for tag in m["tags"] if tag in ("spec", "attempt", "result", "summary"))
    assert kinds == ["attempt"] * 3 + ["result"] * 3 + ["spec"] * 3 + ["summary"]
    attempt = next(m for m in memories if "attempt" in m["tags"] and "HumanEval/1" in m["tags"])
    assert "def separate_paren_groups" in attempt["content"]
    assert attempt["metadata"]["passed"] is True and attempt["metadata"]["tests_total"] > 0
    assert summary.memory_lost_writes == 0


@pytest.mark.slow  # ~25 s: a server process per memory operation
async def test_ephemeral_and_off_give_the_same_verdicts_as_persistent(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    results = {}
    for mode in ("persistent", "ephemeral", "off"):
        cfg = compose_config("problems=[HumanEval/0,HumanEval/32,HumanEval/38]", "tracking=off", f"cortex={mode}")
        await Runner(Plan.build(cfg), tmp_path / mode).run()
        results[mode] = verdicts(tmp_path / mode)
    assert results["persistent"] == results["ephemeral"] == results["off"]
    assert all(v[0] for v in results["persistent"].values())


def spec_calls(run_dir: Path) -> int:
    spans = [json.loads(line) for line in (run_dir / "traces.jsonl").read_text().splitlines()]
    return sum(s["name"] == "spec_generation" for trace in spans for s in trace["spans"])


def reused(run_dir: Path) -> list[bool]:
    return [p["spec_reused"] for p in json.loads((run_dir / "results.json").read_text())["problems"]]


async def test_by_default_a_second_run_reuses_specs_of_the_same_spec_model_and_prompt(tmp_path, monkeypatch) -> None:
    """The default reads memory: specs of the same origin are reused, others are written anew."""
    monkeypatch.chdir(tmp_path)
    await Runner(Plan.build(compose_config("end=3", "tracking=off", "cache=false")), tmp_path / "first").run()
    await Runner(Plan.build(compose_config("end=3", "tracking=off", "cache=false")), tmp_path / "second").run()
    other = compose_config("end=3", "tracking=off", "cache=false", "spec_model.temperature=0.7")
    await Runner(Plan.build(other), tmp_path / "other").run()
    assert (reused(tmp_path / "first"), spec_calls(tmp_path / "first")) == ([False] * 3, 3)
    assert (reused(tmp_path / "second"), spec_calls(tmp_path / "second")) == ([True] * 3, 0)
    assert (reused(tmp_path / "other"), spec_calls(tmp_path / "other")) == ([False] * 3, 3)  # another origin
    assert verdicts(tmp_path / "first") == verdicts(tmp_path / "second") == verdicts(tmp_path / "other")


async def test_spec_reuse_over_the_mcp_server_and_switched_off(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    await Runner(Plan.build(compose_config("end=2", "tracking=off", "cortex=persistent")), tmp_path / "first").run()
    await Runner(Plan.build(compose_config("end=2", "tracking=off", "cortex=persistent")), tmp_path / "second").run()
    off = compose_config("end=2", "tracking=off", "cortex=persistent", "spec.reuse=false", "cache=false")
    await Runner(Plan.build(off), tmp_path / "off").run()
    assert reused(tmp_path / "second") == [True, True] and spec_calls(tmp_path / "second") == 0
    spans = [json.loads(line) for line in (tmp_path / "second" / "traces.jsonl").read_text().splitlines()]
    assert "cortex_recall" in {s["name"] for trace in spans for s in trace["spans"]}
    assert reused(tmp_path / "off") == [False, False] and spec_calls(tmp_path / "off") == 2


async def test_server_killed_mid_run_reconnects_and_loses_no_results(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "own-cortex.db"  # an absolute path only this test's server has on its command line
    cfg = compose_config("end=24", "tracking=off", "cortex=persistent", f"cortex.db={db}")
    run = asyncio.create_task(Runner(Plan.build(cfg), tmp_path / "run").run())
    results = tmp_path / "run" / "results.jsonl"
    deadline = time.monotonic() + 120
    while not results.exists() or len(results.read_text().splitlines()) < 4:
        assert not run.done(), "the run ended before 4 problems were recorded"
        assert time.monotonic() < deadline, "no 4 results within 120 s"
        await asyncio.sleep(0.05)
    pids = own_children(f"koderz.cortex serve --db {db}")  # started by this test's own run
    assert len(pids) == 1, "the run's embedded server is not running"
    os.kill(pids[0], signal.SIGKILL)
    summary = (await asyncio.wait_for(run, 300)).summary
    assert summary.problems == 24 and summary.passed == 24
    assert len(results.read_text().splitlines()) == 24
    stored = await export(cfg, [summary.run_id, "result"])
    assert len(stored) == 24 - summary.memory_lost_writes
    assert summary.memory_lost_writes <= 1  # at most the write in flight when the server died
