"""``sandbox.detail=first_failure`` gives the verdict of a full run, on real model answers.

The judge stops at the first failing input (EvalPlus datasets) and the attempt is stopped there;
status, passed, base_passed and the reported failure must be those of the run that judges every
input. The default suite checks a fixed subset of the 2,705 real answers on HumanEval+ mini; the
slow test checks all of them on the full HumanEval+ inputs.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

import pytest

from koderz.datasets.loaders import load_dataset
from koderz.sandbox.sandbox import Sandbox, SandboxConfig
from koderz.sandbox.verdict import Verdict
from koderz.vocab import Detail, Mode
from tests.conftest import plan

SUBSET_STEP = 100  # every 100th real answer in the default suite (28 answers)


def real_answers(shared_data: Path, step: int) -> list[dict[str, str]]:
    with gzip.open(shared_data / "real-llm-humaneval-samples.jsonl.gz", "rt") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return rows[::step]


def judge_both(dataset: str, rows: list[dict[str, str]], uid_base: int) -> list[tuple[Verdict, Verdict]]:
    problems = {p.task_id: p for p in load_dataset(dataset)}

    async def judge(detail: Detail) -> list[Verdict]:
        sandbox = Sandbox(SandboxConfig(uid_base=uid_base, detail=detail))
        try:
            return await asyncio.gather(*(sandbox.evaluate(problems[r["task_id"]], r["solution"]) for r in rows))
        finally:
            await sandbox.drain()
            sandbox.close()

    full = asyncio.run(judge(Detail.FULL))
    fast = asyncio.run(judge(Detail.FIRST_FAILURE))
    return list(zip(full, fast, strict=True))


def assert_same_verdicts(rows: list[dict[str, str]], pairs: list[tuple[Verdict, Verdict]]) -> int:
    """Every pair decides alike (a difference names its answer: its place in ``rows``, its task and
    both verdicts' errors); returns how many first_failure verdicts judged fewer inputs."""
    for place, (row, (full, fast)) in enumerate(zip(rows, pairs, strict=True)):
        decided = (fast.status, fast.passed, fast.base_passed, fast.failing_input, fast.expected, fast.got)
        answer = f"answer {place} ({row['task_id']}): first_failure {fast.error!r}, full {full.error!r}"
        assert decided == (full.status, full.passed, full.base_passed, full.failing_input, full.expected, full.got), (
            answer
        )
        assert fast.tests_passed <= full.tests_passed, answer
    return sum(fast.tests_passed < full.tests_passed for full, fast in pairs)


def test_first_failure_verdicts_equal_full_on_real_answers(shared_data: Path, uid_base: int) -> None:
    rows = real_answers(shared_data, SUBSET_STEP)
    pairs = judge_both("humaneval_plus_mini", rows, uid_base)
    stopped_early = assert_same_verdicts(rows, pairs)
    failing = [full for full, _ in pairs if not full.passed]
    assert failing, "the subset holds failing answers"
    assert any(full.base_passed for full in failing), "and one that fails on a plus input only"
    assert any(not full.base_passed for full in failing), "and one that fails a base input"
    assert stopped_early, "first_failure judged fewer inputs of some failing answer"


@pytest.mark.slow
@pytest.mark.xfail(
    reason="known once: one of 2,705 real answers was 'error' under first_failure and 'passed' under full "
    "(which one was not recorded); not reproduced by a complete run of both details on 2026-12-07 "
    "(identical statuses on all 2,705): a recurrence now names the answer; why auto means full",
    strict=False,
)
def test_first_failure_verdicts_equal_full_on_every_real_answer(shared_data: Path, uid_base: int) -> None:
    rows = real_answers(shared_data, 1)
    assert len(rows) == 2705
    assert assert_same_verdicts(rows, judge_both("humaneval_plus", rows, uid_base))


def test_detail_follows_what_is_read() -> None:
    assert plan("mode=zero_shot").sandbox.detail is Detail.FULL  # until first_failure equals full on every answer
    assert plan("mode=iterative").sandbox.detail is Detail.FULL  # the next prompt shows the detail
    assert plan("mode=comparative").sandbox.detail is Detail.FULL
    assert plan("mode=zero_shot", "sandbox.detail=full").sandbox.detail is Detail.FULL
    assert plan("mode=iterative", "sandbox.detail=first_failure").sandbox.detail is Detail.FIRST_FAILURE
    assert Mode.ITERATIVE.spec.feedback


def test_unknown_detail_is_rejected() -> None:
    from koderz.errors import ConfigError

    with pytest.raises(ConfigError, match=r"sandbox\.detail"):
        plan("sandbox.detail=some")


FAILS_THEN_LOOPS = """
calls = 0


def has_close_elements(numbers, threshold):
    global calls
    calls += 1
    if calls == 1:
        return "wrong"
    while True:
        pass
"""


def test_a_failure_before_a_loop_is_judged_failed_in_both_modes(humaneval_plus, uid_base: int) -> None:
    """The child flushes after answers 0, 1, 3, 7, ...: the first wrong answer reaches the judge
    before the loop, so the verdict is that failure (first_failure stops the attempt there; full
    runs on until the CPU limit), not a timeout."""
    problem = humaneval_plus["HumanEval/0"]

    async def judge(detail: Detail) -> Verdict:
        sandbox = Sandbox(SandboxConfig(uid_base=uid_base, detail=detail, cpu_floor=1.0, cpu_factor=1.0))
        try:
            return await sandbox.evaluate(problem, FAILS_THEN_LOOPS)
        finally:
            await sandbox.drain()
            sandbox.close()

    for detail in (Detail.FIRST_FAILURE, Detail.FULL):
        verdict = asyncio.run(judge(detail))
        assert (verdict.status, verdict.passed, verdict.base_passed, verdict.tests_passed) == (
            "failed",
            False,
            False,
            0,
        )
        assert verdict.got == "'wrong'"
