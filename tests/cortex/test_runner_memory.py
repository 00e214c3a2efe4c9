"""What a run stores in Cortex, spec reuse, and a server killed mid-run (real server processes)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from koderz.cortex.factory import open_memory_store
from koderz.plan import Plan
from koderz.runner import Runner
from tests.conftest import compose_config


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


async def test_ephemeral_and_off_give_the_same_verdicts_as_persistent(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    results = {}
    for mode in ("persistent", "ephemeral", "off"):
        cfg = compose_config("problems=[HumanEval/0,HumanEval/32,HumanEval/38]", "tracking=off", f"cortex={mode}")
        await Runner(Plan.build(cfg), tmp_path / mode).run()
        results[mode] = verdicts(tmp_path / mode)
    assert results["persistent"] == results["ephemeral"] == results["off"]
    assert all(v[0] for v in results["persistent"].values())


async def test_spec_reuse_takes_the_stored_spec_without_a_model_call(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = compose_config("end=2", "tracking=off", "cortex=persistent")
    await Runner(Plan.build(first), tmp_path / "first").run()
    second = compose_config("end=2", "tracking=off", "cortex=persistent", "spec.reuse=true")
    await Runner(Plan.build(second), tmp_path / "second").run()
    problems = json.loads((tmp_path / "second" / "results.json").read_text())["problems"]
    assert all(p["spec_reused"] for p in problems)
    spans = [json.loads(line) for line in (tmp_path / "second" / "traces.jsonl").read_text().splitlines()]
    names = {s["name"] for trace in spans for s in trace["spans"]}
    assert "spec_generation" not in names and "cortex_recall" in names


def _server_pids(db: Path) -> list[int]:
    found = subprocess.run(["pgrep", "-f", f"koderz.cortex serve --db {db}"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


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
    pids = _server_pids(db)
    assert pids, "the embedded server is not running"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    summary = (await run).summary
    assert summary.problems == 24 and summary.passed == 24
    assert len(results.read_text().splitlines()) == 24
    stored = await export(cfg, [summary.run_id, "result"])
    assert len(stored) == 24 - summary.memory_lost_writes
    assert summary.memory_lost_writes <= 1  # at most the write in flight when the server died
