"""BigCodeBench judging: test discovery, and real tasks judged through the real sandbox with
numpy/pandas/matplotlib bound in: canonical solutions pass, every wrong or hostile variant fails."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from koderz.bench.bigcodebench import BigCodeBenchEvaluator, BigCodeBenchJudging, sandbox_config, suite_test_names
from koderz.problems import load_benchmark
from koderz.sandbox.sandbox import Sandbox
from tests.support.bench_files import bcb_config, bcb_samples
from tests.support.bench_files import sandbox_config as base_config

JUDGING = BigCodeBenchJudging(time_limit=3)


def test_discovery_finds_test_methods_of_TestCases_and_its_bases_sorted():
    source = (
        "import unittest\nclass Base(unittest.TestCase):\n    def test_z(self): pass\n    def helper(self): pass\n"
        "class TestCases(Base):\n    def test_b(self): pass\n    def test_a(self): pass\n"
        "class Other(unittest.TestCase):\n    def test_other(self): pass\n"
    )
    assert suite_test_names(source) == ["test_a", "test_b", "test_z"]


def problems_by_id():
    return {p.task_id: p for p in load_benchmark(bcb_config())}


async def _judge_all(samples):
    problems = {p.task_id: p for p in load_benchmark(bcb_config())}
    sandbox = Sandbox(sandbox_config(base_config(), JUDGING))
    evaluator = BigCodeBenchEvaluator(sandbox, JUDGING)
    try:
        return [(s, await evaluator.evaluate(problems[s.task_id], s.solution)) for s in samples]
    finally:
        sandbox.close()


async def test_canonical_passes_and_each_hostile_kind_fails_in_the_sandbox():
    samples = bcb_samples()
    by_kind: dict[str, Any] = {}
    for sample in samples:  # one sample of each kind, from tasks using numpy, pandas, matplotlib, files
        by_kind.setdefault(sample.variant, sample)
    chosen = [*by_kind.values(), *(s for s in samples if s.task_id in {"KoderzBCB/16", "KoderzBCB/24"})]
    assert set(by_kind) == {"canonical", "wrong", "raise", "prints", "sys_exit", "tamper", "loop", "os_exit"}
    for sample, judged in await _judge_all(chosen):
        assert judged.passed is sample.should_pass, (sample.task_id, sample.variant, judged.feedback())
        if not judged.passed:
            assert judged.failing_input is not None or judged.status != "passed"
        if sample.variant == "tamper":
            assert "tampered" in (judged.error or "")
        if sample.variant == "wrong":
            assert judged.failing_input and judged.failing_input.startswith("test")
            assert judged.error
            # the suite ran whole: every test counts as run, and the feedback says so
            assert judged.tests_run == judged.tests_total
            # every failing test by its method name, the first one first
            assert judged.failed_tests and judged.failed_tests[0] == judged.failing_input
            assert len(judged.failed_tests) == judged.tests_total - judged.tests_passed
            assert set(judged.failed_tests) <= set(suite_test_names(problems_by_id()[sample.task_id].tests))
            assert f"({judged.tests_passed}/{judged.tests_total} tests passed)" in judged.feedback()


@pytest.mark.slow
async def test_every_bigcodebench_sample_gets_its_expected_verdict():
    wrong = [
        (s.task_id, s.variant, j.feedback())
        for s, j in await _judge_all(bcb_samples())
        if j.passed is not s.should_pass
    ]
    assert wrong == []


RESULT_STREAM_INJECTION = """
import os, json
def task_func(words):
    return None
names = {names!r}
lines = "V 0 " + json.dumps(names) + "\\n" + "".join('V %d "pass"\\n' % (i + 1) for i in range(len(names))) + "D 0 \\n"
for fd in range(3, 64):
    try:
        os.write(fd, lines.encode())
    except OSError:
        pass
os._exit(0)
"""


async def test_a_solution_writing_passes_into_the_result_stream_fails():
    problem = load_benchmark(bcb_config())[0]
    attack = RESULT_STREAM_INJECTION.format(names=suite_test_names(problem.tests))
    sandbox = Sandbox(sandbox_config(base_config(), JUDGING))
    try:
        judged = await BigCodeBenchEvaluator(sandbox, JUDGING).evaluate(problem, attack)
    finally:
        sandbox.close()
    assert not judged.passed
    assert judged.tests_passed == 0


async def test_a_run_preloads_its_tasks_declared_libraries_in_the_fork_server():
    """What the runner does: the evaluator made from the run's sandbox config, prepared with the
    run's problems, preloads what those tasks declare (numpy, pandas, matplotlib.pyplot)."""
    problems = load_benchmark(bcb_config())
    evaluator = BigCodeBenchEvaluator.start(base_config())
    try:
        await evaluator.prepare(asyncio.sleep(0, problems))
        report = await evaluator.sandbox.preload_report()
        verdict = await evaluator.evaluate(problems[0], bcb_samples()[0].solution)
    finally:
        evaluator.close()
    assert {"numpy", "pandas", "matplotlib.pyplot"} <= set(report.loaded), report
    assert report.threads == 1
    assert verdict.passed is bcb_samples()[0].should_pass, verdict.feedback()
