"""A model failure is never a verdict: a server that dies mid-run, and a resume against its new address.

Whole runs through the real OpenAI SDK client against the scripted server (tests/support/fakes).
"""

from __future__ import annotations

import asyncio
import time

from koderz.datasets.loaders import load_dataset
from koderz.errors import ExitCode
from koderz.plan import Plan
from koderz.records import RunFolder
from koderz.resume import resume_config
from koderz.runner import Runner
from koderz.vocab import Status
from tests.conftest import compose_config
from tests.support.fakes.scripted_server import ScriptedServer, fenced

TASKS = 8
DEADLINE = 120.0


def answers(body, route, index):
    """The reference program of the task the prompt names."""
    text = body["messages"][-1]["content"]
    for problem in load_dataset("humaneval")[:TASKS]:
        if f"function `{problem.entry_point}`" in text:
            return fenced(problem.reference_program)
    return "no such task"


def overrides(url: str) -> list[str]:
    return [
        "model=gpt-4o-mini",
        f"model.base_url={url}",
        "model.max_retries=1",
        "model.retry_backoff=0.01",
        "model.breaker_failures=2",
        "model.breaker_wait=0.5",
        "spec.enabled=false",
        f"end={TASKS}",
        "concurrency=1",
        "tracking=off",
        "cortex=off",
        "cache=false",
    ]


async def test_a_dead_server_stops_the_run_and_resume_finishes_exactly_the_unanswered(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    folder = tmp_path / "run"
    async with ScriptedServer(answers) as server:
        run = asyncio.create_task(Runner(Plan.build(compose_config(*overrides(server.openai_url))), folder).run())
        results = folder / "results.jsonl"
        deadline = time.monotonic() + DEADLINE
        while not results.exists() or len(results.read_text().splitlines()) < 3:
            assert not run.done() and time.monotonic() < deadline, "the run did not answer 3 problems"
            await asyncio.sleep(0.02)
        await server.kill()
        outcome = await asyncio.wait_for(run, DEADLINE)
        calls_before = len(server.chat_requests)

        summary = outcome.summary
        assert outcome.exit_code == ExitCode.UNANSWERED
        assert summary.answered >= 3 and summary.passed == summary.answered and summary.pass_rate == 1.0
        assert summary.unanswered >= 1 and summary.statuses.get(Status.MODEL_ERROR, 0) == summary.unanswered
        assert summary.not_run == TASKS - summary.answered - summary.unanswered > 0  # no new problems were sent
        assert summary.stopped_reason is not None and "stopped answering" in summary.stopped_reason
        record = next(r for r in RunFolder(folder).records() if r.status is Status.MODEL_ERROR)
        assert "endpoint_down" in (record.error or "") or "connect" in (record.error or "")

        before = results.read_text().splitlines(keepends=True)
        answered = [line for line in before if '"status":"passed"' in line]
        await server.restart(port=0)  # the server comes back on another port
        moved = compose_config(*overrides(server.openai_url), f"resume={folder}")
        config, applied = resume_config(folder, moved, [f"model.base_url={server.openai_url}"])
        resumed = await Runner(Plan.build(config), folder, resuming=True, overrides=applied).run()

    assert resumed.exit_code == ExitCode.OK and resumed.summary.passed == TASKS
    after = results.read_text().splitlines(keepends=True)
    assert after[: len(answered)] == answered  # earlier verdicts untouched, byte for byte
    assert sorted(r.task_id for r in RunFolder(folder).records()) == sorted(f"HumanEval/{i}" for i in range(TASKS))
    assert len(server.chat_requests) - calls_before == TASKS - len(answered)  # exactly the unanswered ran again
    state = RunFolder(folder).read_state()
    assert state is not None and state.parts[-1].overrides == [f"model.base_url={server.openai_url}"]
