"""LiveCodeBench judging: the output normal form matches its grade_stdio rule, and real
answers judged through the real sandbox get their expected verdicts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from koderz.bench.lcb_harness import normal_form
from koderz.bench.livecodebench import LiveCodeBenchEvaluator, LiveCodeBenchJudging
from koderz.problems import load_benchmark
from koderz.sandbox.sandbox import Sandbox
from tests.support.bench_files import lcb_config, lcb_samples, sandbox_config


def grade_stdio_accepts(prediction: str, expected: str) -> bool:
    """LiveCodeBench's rule, restated: stripped lines, same count, each equal as text or as decimals."""
    got, want = ([line.strip() for line in v.strip().split("\n")] for v in (prediction, expected))
    if len(got) != len(want):
        return False
    for a, b in zip(got, want, strict=True):
        if a == b:
            continue
        try:
            if [Decimal(x) for x in a.split()] != [Decimal(x) for x in b.split()]:
                return False
        except Exception:
            return False
    return True


CASES = [
    ("3\n", "3"), ("3 ", "3"), ("1.0", "1"), ("0.25", "2.5e-1"), ("-0.0", "0"), ("1  2", "1 2"),
    ("a  b", "a b"), ("Yes", "yes"), ("NaN", "NaN"), ("nan", "NaN"), ("1\n\n2", "1\n2"), ("", ""),
    ("12345678901234567890123456789012", "12345678901234567890123456789013"), ("inf", "Infinity"),
    ("1\n2\n", "1\n2"), ("x\n", "x\ny"), ("10", "1e1"), ("100", "1E+2"), ("0.1", "0.10000000000000000000000000001"),
]  # fmt: skip


@pytest.mark.parametrize(("prediction", "expected"), CASES)
def test_equal_normal_forms_exactly_when_livecodebench_accepts(prediction: str, expected: str):
    assert (normal_form(prediction) == normal_form(expected)) == grade_stdio_accepts(prediction, expected)


async def test_right_answers_pass_and_wrong_crashing_and_slow_ones_fail_in_the_sandbox():
    problems = {p.task_id: p for p in load_benchmark(lcb_config())}
    chosen = {"kz0", "kz1", "kz16", "kz23"}  # stdin with slow, stdin with whitespace, functional, tuple
    samples = [s for s in lcb_samples() if s.task_id in chosen]
    assert {s.variant for s in samples} == {"right", "wrong", "crash", "slow", "whitespace"}
    sandbox = Sandbox(sandbox_config())
    evaluator = LiveCodeBenchEvaluator(sandbox, LiveCodeBenchJudging(timeout=2))
    try:
        for sample in samples:
            judged = await evaluator.evaluate(problems[sample.task_id], sample.solution)
            assert judged.passed is sample.should_pass, (sample.task_id, sample.variant, judged.feedback())
            assert judged.tests_total == len(problems[sample.task_id].extra["livecodebench"].tests)
            if not judged.passed:
                assert judged.feedback() and judged.tests_passed < judged.tests_total
                assert judged.failing_input is not None or judged.error
    finally:
        sandbox.close()


@pytest.mark.slow
async def test_every_livecodebench_sample_gets_its_expected_verdict():
    problems = {p.task_id: p for p in load_benchmark(lcb_config())}
    sandbox = Sandbox(sandbox_config())
    evaluator = LiveCodeBenchEvaluator(sandbox, LiveCodeBenchJudging(timeout=2))
    wrong = []
    try:
        for sample in lcb_samples():
            judged = await evaluator.evaluate(problems[sample.task_id], sample.solution)
            if judged.passed is not sample.should_pass:
                wrong.append((sample.task_id, sample.variant, judged.feedback()))
    finally:
        sandbox.close()
    assert wrong == []
