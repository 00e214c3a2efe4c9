"""LiveCodeBench judging as its ``testing_util`` judges: every test (public, then private) runs
in one sandboxed child (``lcb_harness``) under the per-test alarm (6 s, LiveCodeBench's
default); stdin tests compare the output's stripped lines, exactly or as decimals; functional
tests compare ``Solution().<func_name>(*args)`` (a tuple as a list) with ``==``. The expected
outputs stay on the trusted side: the child returns each output's normal form and the judge
compares. The attempt's CPU budget is LiveCodeBench's own global bound, (timeout + 1) x tests + 5.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from koderz.bench.base import Judged
from koderz.bench.harness import harness_problem, harness_program, reference_seconds_for
from koderz.bench.lcb_harness import normal_form
from koderz.datasets.livecodebench import TestType, task_of
from koderz.datasets.problem import Problem
from koderz.errors import DatasetError
from koderz.sandbox.sandbox import Sandbox
from koderz.sandbox.verdict import Verdict

ENTRY = "koderz_lcb_run"
TIMEOUT = 6  # seconds per test: LiveCodeBench's --timeout default


@dataclass(frozen=True)
class LiveCodeBenchJudging:
    timeout: int = TIMEOUT


class LiveCodeBenchEvaluator:
    """An ``Evaluator`` for ``dataset=livecodebench``."""

    def __init__(self, sandbox: Sandbox, judging: LiveCodeBenchJudging | None = None) -> None:
        self.sandbox = sandbox
        self.judging = judging or LiveCodeBenchJudging()

    async def judge(self, problem: Problem, program: str) -> Judged:
        task = task_of(problem)
        expected: list[object] = []
        for index, test in enumerate(task.tests):
            if test.testtype is TestType.STDIN:
                expected.append(normal_form(test.output))
            else:
                try:
                    expected.append({"v": json.loads(test.output)})
                except ValueError as exc:
                    raise DatasetError(f"{problem.task_id}: test {index} output is not JSON") from exc
        timeout = self.judging.timeout
        harness = harness_program("lcb_harness", {"KZ_CODE": program, "KZ_FUNC_NAME": task.func_name,
                                                  "KZ_TIMEOUT": timeout})  # fmt: skip
        judged = harness_problem(
            problem,
            program_entry=ENTRY,
            inputs=[(test.input,) for test in task.tests],
            expected=expected,
            reference_seconds=reference_seconds_for(self.sandbox.config, (timeout + 1) * len(task.tests) + 5),
        )
        return _judged(await self.sandbox.evaluate(judged, harness), len(task.tests))


def _judged(verdict: Verdict, total: int) -> Judged:
    parts = [f"input: {verdict.failing_input}"] if verdict.failing_input is not None else []
    if verdict.got is not None:
        parts += [f"expected: {verdict.expected}", f"got: {verdict.got}"]
    if verdict.error:
        parts.append(verdict.error)
    return Judged(
        passed=verdict.passed and verdict.tests_total == total,
        status=verdict.status,
        tests_passed=verdict.tests_passed,
        tests_total=total,
        failing_test=verdict.failing_input,
        message="\n".join(parts) or None,
        verdict=verdict,
    )
