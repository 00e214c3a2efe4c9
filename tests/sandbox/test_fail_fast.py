"""``sandbox.detail=first_failure`` gives the verdict of a full run, on real model answers.

The judge stops at the first failing input (EvalPlus datasets) and the attempt is stopped there;
status, passed, base_passed and the reported failure must be those of the run that judges every
input, and a passing answer's whole verdict is the same. The judge-level tests show why: the
detail changes nothing before an input has failed. The default suite checks a fixed subset of
the 2,705 real answers on HumanEval+ mini; the slow test checks all of them on the full
HumanEval+ inputs.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from koderz.answers.wire import encode
from koderz.bench.bigcodebench import BigCodeBenchJudging, sandbox_config
from koderz.datasets.loaders import load_dataset
from koderz.datasets.problem import Problem
from koderz.records import RunFolder
from koderz.result_cache import run_key
from koderz.sandbox.judge import Judgement
from koderz.sandbox.judge_server import judge_attempt
from koderz.sandbox.mechanism import Mechanism
from koderz.sandbox.sandbox import Sandbox, SandboxConfig
from koderz.sandbox.verdict import Verdict
from koderz.vocab import Detail, Mode, Status
from tests.conftest import plan, run_job
from tests.support.judging import judged_once

SUBSET_STEP = 100  # every 100th real answer in the default suite (28 answers)
DECIDED = ("status", "passed", "base_passed", "failing_input", "expected", "got", "error")  # a verdict's decision


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
    """Every pair is the same verdict: a passing answer's in every field but its duration, a
    failing answer's in status, passed, base_passed and its first failure (input, expected, got,
    error), with first_failure having judged inputs up to that failure and no further. A difference
    names its answer (its place in ``rows``, its task and both errors). Returns how many
    first_failure verdicts judged fewer inputs."""
    for place, (row, (full, fast)) in enumerate(zip(rows, pairs, strict=True)):
        answer = f"answer {place} ({row['task_id']}): first_failure {fast.error!r}, full {full.error!r}"
        if full.passed or fast.passed:  # the slot (so the uid in ``isolation``) may be another one
            assert replace(fast, duration=0.0, isolation={}) == replace(full, duration=0.0, isolation={}), answer
            continue
        # a timeout names the limit that ended it (CPU, or the wall-clock backstop on a loaded machine)
        fields = DECIDED if full.status is not Status.TIMEOUT else DECIDED[:-1]
        assert [getattr(fast, f) for f in fields] == [getattr(full, f) for f in fields], answer
        assert fast.failed_tests[:1] == full.failed_tests[:1], answer
        assert fast.tests_passed <= full.tests_passed and fast.tests_run <= full.tests_run, answer
    return sum(fast.tests_run < full.tests_run for full, fast in pairs)


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
def test_first_failure_verdicts_equal_full_on_every_real_answer(shared_data: Path, uid_base: int) -> None:
    rows = real_answers(shared_data, 1)
    assert len(rows) == 2705
    assert assert_same_verdicts(rows, judge_both("humaneval_plus", rows, uid_base))


def test_detail_follows_what_is_read() -> None:
    assert plan("mode=zero_shot").sandbox.detail is Detail.FIRST_FAILURE  # only the verdict is read
    assert plan("mode=zero_shot", "n_samples=5").sandbox.detail is Detail.FIRST_FAILURE
    assert plan("mode=iterative").sandbox.detail is Detail.FULL  # the next prompt shows the detail
    assert plan("mode=comparative").sandbox.detail is Detail.FULL  # its iterative part does
    assert plan("mode=zero_shot", "sandbox.detail=full").sandbox.detail is Detail.FULL
    assert plan("mode=iterative", "sandbox.detail=first_failure").sandbox.detail is Detail.FIRST_FAILURE
    assert Mode.ITERATIVE.spec.feedback and Mode.COMPARATIVE.spec.feedback and not Mode.ZERO_SHOT.spec.feedback


def test_the_result_cache_keys_verdicts_by_their_detail() -> None:
    """A first_failure verdict is never served where a full one is needed: the resolved detail
    is part of the cache's run key."""
    fast = run_key(plan("mode=zero_shot"), "v", Mechanism.ROOT_NAMESPACES)
    full = run_key(plan("mode=zero_shot", "sandbox.detail=full"), "v", Mechanism.ROOT_NAMESPACES)
    assert (fast["sandbox"]["detail"], full["sandbox"]["detail"]) == (Detail.FIRST_FAILURE, Detail.FULL)
    assert {k: v for k, v in fast.items() if k != "sandbox"} == {k: v for k, v in full.items() if k != "sandbox"}


def test_bigcodebench_judges_every_test_whatever_the_detail() -> None:
    """Its suite runs whole at the first call: the per-test outcomes are all read."""
    config = sandbox_config(SandboxConfig(detail=Detail.FIRST_FAILURE), BigCodeBenchJudging(library_paths=("/x",)))
    assert config.detail is Detail.FULL


def _judge_lines(problem: Problem, lines: list[bytes], detail: Detail) -> Judgement:
    """The judge's decision on a result stream (a real ``judge_attempt`` reading a file of lines)."""
    limits = Sandbox(SandboxConfig()).answer_limits(problem)
    request = {"limits": asdict(limits), "memory_mb": 512, "first_failure": detail is Detail.FIRST_FAILURE}
    stop_r, stop_w = os.pipe()  # never closed while judging: the stream's end decides
    with tempfile.TemporaryFile() as stream:
        stream.write(b"".join(line + b"\n" for line in lines))
        stream.seek(0)
        try:
            return judge_attempt(problem, request, stream.fileno(), stop_r)
        finally:
            os.close(stop_r)
            os.close(stop_w)


def _answers(problem: Problem) -> list[bytes]:
    return [b"S 0 {}", *(b"V %d %s" % (i, encode(problem.expected[i]).encode()) for i in range(len(problem.inputs)))]


def test_the_judge_takes_the_same_path_for_an_answer_that_passes_every_input(humaneval_plus) -> None:
    """first_failure changes the judge only once an input has failed: for a stream of right
    answers the two judgements are identical."""
    problem = humaneval_plus["HumanEval/0"]
    lines = [*_answers(problem), b"D 0 "]
    full, fast = (_judge_lines(problem, lines, detail) for detail in (Detail.FULL, Detail.FIRST_FAILURE))
    assert full == fast and full.status == "passed" and full.tests_run == len(problem.inputs)


def test_the_judge_stops_at_the_first_failing_input_with_the_same_decision(humaneval_plus) -> None:
    """Input k answered wrong, later inputs wrong too: the same status and first failure; the
    fail-fast judge reads no line after input k (a broken line there is never seen)."""
    problem = humaneval_plus["HumanEval/0"]
    k = problem.base_input_count + 3
    lines = _answers(problem)
    lines[1 + k] = b"V %d 42" % k
    lines[2 + k] = b"V %d 43" % (k + 1)
    full, fast = (_judge_lines(problem, lines, detail) for detail in (Detail.FULL, Detail.FIRST_FAILURE))
    assert (fast.status, fast.failing_input, fast.expected, fast.got, fast.base_passed) == (
        full.status,
        full.failing_input,
        full.expected,
        full.got,
        full.base_passed,
    )
    assert (fast.status, fast.got, fast.base_passed) == ("failed", "42", True)
    assert (fast.tests_passed, fast.tests_run, fast.failed) == (k, k + 1, [k])
    assert (full.tests_passed, full.tests_run, full.failed) == (
        len(problem.inputs) - 2,
        len(problem.inputs),
        [k, k + 1],
    )
    broken = [*lines[: 2 + k], b"V %d [[[" % (k + 1)]
    assert _judge_lines(problem, broken, Detail.FIRST_FAILURE) == fast  # not read
    assert _judge_lines(problem, broken, Detail.FULL).status == "error"  # the documented hostile case


FAILS_AT_CALL = """
calls = 0


def has_close_elements(numbers, threshold):
    global calls
    calls += 1
    if calls == {call}:
        {action}
    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1 :])
"""


def _judge_one(problem: Problem, program: str, detail: Detail, uid_base: int) -> Verdict:
    return judged_once(SandboxConfig(uid_base=uid_base, detail=detail), problem, program)


def test_a_real_passing_answer_gets_the_identical_verdict_in_both_details(humaneval_plus, uid_base: int) -> None:
    problem = humaneval_plus["HumanEval/0"]
    program = FAILS_AT_CALL.format(call=-1, action="pass")
    full, fast = (_judge_one(problem, program, detail, uid_base) for detail in (Detail.FULL, Detail.FIRST_FAILURE))
    assert full.passed and full.tests_run == full.tests_total == len(problem.inputs)
    assert replace(fast, duration=0.0) == replace(full, duration=0.0)


@pytest.mark.parametrize("action", ["return 'wrong'", "raise ValueError('at this call')"])
def test_a_real_answer_failing_input_k_gets_the_same_decision_in_both_details(
    humaneval_plus, uid_base: int, action: str
) -> None:
    """Failing input k only: the same status, first failure and error; first_failure ran k + 1 inputs."""
    problem = humaneval_plus["HumanEval/0"]
    k = problem.base_input_count + 5
    program = FAILS_AT_CALL.format(call=k + 1, action=action)
    full, fast = (_judge_one(problem, program, detail, uid_base) for detail in (Detail.FULL, Detail.FIRST_FAILURE))
    assert [getattr(fast, f) for f in DECIDED] == [getattr(full, f) for f in DECIDED]
    assert fast.status == ("failed" if "wrong" in action else "error") and fast.base_passed is True
    assert (fast.tests_passed, fast.tests_run, fast.failed_tests) == (k, k + 1, (str(k),))
    assert (full.tests_passed, full.tests_run, full.failed_tests) == (
        len(problem.inputs) - 1,
        full.tests_total,
        (str(k),),
    )
    assert f"after {k + 1} of {fast.tests_total} tests ran ({k} passed;" in fast.feedback()


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


async def test_a_run_records_how_far_each_verdict_got(tmp_path: Path, humaneval_plus) -> None:
    """Zero-shot (only the verdict is read): the attempt and its sample say the failing input
    was the last one run; iterative (the next prompt reads the detail): every input was run."""
    k = humaneval_plus["HumanEval/0"].base_input_count + 5
    replay = tmp_path / "replay.jsonl"
    program = FAILS_AT_CALL.format(call=k + 1, action="return 'wrong'")
    replay.write_text(json.dumps({"task_id": "HumanEval/0", "solution": program}) + "\n")
    common = ("dataset=humaneval_plus", "model=replay", f"model.samples={replay}", "problems=[HumanEval/0]")
    quiet = ("tracking=off", "cortex=off", "cache=false", "sandbox.max_processes=1")
    await run_job(tmp_path / "zero_shot", "mode=zero_shot", *common, *quiet)
    await run_job(
        tmp_path / "iterative", "mode=iterative", "max_iterations=1", "checkpoints.enabled=false", *common, *quiet
    )
    [fast] = RunFolder(tmp_path / "zero_shot").attempts()
    [sample] = RunFolder(tmp_path / "zero_shot").samples(Mode.ZERO_SHOT)
    [full] = RunFolder(tmp_path / "iterative").attempts()
    total = full.tests_total
    assert (fast.status, fast.tests_passed, fast.tests_run, fast.failed_tests) == ("failed", k, k + 1, [str(k)])
    assert (sample.tests_passed, sample.tests_run, sample.tests_total) == (k, k + 1, total)
    assert (full.status, full.tests_passed, full.tests_run, full.failed_tests) == ("failed", total - 1, total, [str(k)])
    assert (fast.failing_input, fast.expected, fast.got) == (full.failing_input, full.expected, full.got)
