"""Slow: the event loop stays responsive while problems run (a stall delays every attempt).

The threshold is a wall-clock figure, so these run in the slow suite with a wide margin (a
blocked loop shows up as stalls of seconds, not of tens of milliseconds).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from koderz.datasets.loaders import load_dataset
from koderz.records import ProblemRecord
from koderz.runner import Runner
from tests.conftest import plan
from tests.support.fakes.scripted_server import ScriptedServer, fenced

pytestmark = pytest.mark.slow
WORST_LAG = 0.25  # seconds


class LoopLagProbe:
    """Measures how late a 5 ms sleep wakes up: the longest time the loop was blocked."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.samples = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, loop.time() - before - 0.005)
            self.samples += 1


class ProbeWhileProblemsRun:
    """A run observer (the runner's public seam): probes the loop from the first finished problem
    to the last, so setup and teardown around the problems are not counted."""

    def __init__(self, probe: LoopLagProbe, problems: int) -> None:
        self.probe = probe
        self.left = problems
        self.task: asyncio.Task[None] | None = None

    def problem_done(self, record: ProblemRecord) -> None:
        self.left -= 1
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.probe.run())
        if self.left == 0:
            self.stop()

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


async def _run_with_probe(overrides: list[str], folder: Path, problems: int) -> tuple[int, LoopLagProbe]:
    probe = LoopLagProbe()
    watcher = ProbeWhileProblemsRun(probe, problems)
    try:
        outcome = await Runner(plan(*overrides), folder, observers=[watcher]).run()
    finally:
        watcher.stop()
    return outcome.summary.passed, probe


async def test_no_callback_blocks_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While problems run (4 at once, iterative, persistent Cortex), the loop stays responsive."""
    monkeypatch.chdir(tmp_path)
    overrides = ["end=64", "concurrency=4", "mode=iterative", "tracking=off", "cortex=persistent"]
    passed, probe = await _run_with_probe(overrides, tmp_path / "run", 64)
    assert passed == 64 and probe.samples > 20
    assert probe.worst < WORST_LAG, f"the event loop was blocked for {probe.worst * 1000:.0f} ms"


async def test_model_calls_over_http_do_not_block_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same with the real OpenAI SDK client: 8 problems at once against a 50 ms server."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    answers = {p.entry_point: fenced(p.reference_program) for p in load_dataset("humaneval")[:32]}

    def script(body, route, index):
        text = body["messages"][-1]["content"]
        return next((answer for name, answer in answers.items() if f"function `{name}`" in text), "no")

    with ScriptedServer(script, latency=0.05).in_thread() as server:
        overrides = [
            "model=gpt-4o-mini",
            f"model.base_url={server.openai_url}",
            "spec.enabled=false",
            "end=32",
            "concurrency=8",
            "tracking=off",
            "cortex=persistent",
            "cache=false",
        ]
        passed, probe = await _run_with_probe(overrides, tmp_path / "run", 32)
    assert passed == 32
    assert probe.worst < WORST_LAG, f"the event loop was blocked for {probe.worst * 1000:.0f} ms"
