"""LiveCodeBench judging as its ``testing_util`` judges: every test (public, then private) runs
in one sandboxed child (``lcb_harness``) under the per-test alarm (6 s, LiveCodeBench's
default); stdin tests compare the output's stripped lines, exactly or as decimals; functional
tests compare ``Solution().<func_name>(*args)`` (a tuple as a list) with ``==``. The expected
outputs stay on the trusted side: the child returns each output's normal form and the judge
compares. The attempt's CPU budget is LiveCodeBench's own global bound, (timeout + 1) x tests + 5.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from koderz.bench.harness import (
    SandboxEvaluator,
    failing_argument,
    harness_problem,
    harness_program,
    judged_value,
    reference_seconds_for,
    with_preamble,
)
from koderz.bench.lcb_harness import normal_form
from koderz.datasets.livecodebench import TestCase, TestType, task_of
from koderz.datasets.problem import Problem
from koderz.errors import DatasetError
from koderz.sandbox.sandbox import Sandbox, SandboxConfig
from koderz.sandbox.verdict import Verdict
from koderz.vocab import Status

ENTRY = "koderz_lcb_run"
TIMEOUT = 6  # seconds per test: LiveCodeBench's --timeout default


@dataclass(frozen=True)
class LiveCodeBenchJudging:
    timeout: int = TIMEOUT


class LiveCodeBenchEvaluator(SandboxEvaluator):
    """The ``Evaluator`` of ``dataset=livecodebench``."""

    def __init__(self, sandbox: Sandbox, judging: LiveCodeBenchJudging | None = None) -> None:
        super().__init__(sandbox)
        self.judging = judging or LiveCodeBenchJudging()

    @classmethod
    def start(cls, config: SandboxConfig) -> LiveCodeBenchEvaluator:
        return cls(Sandbox(config))

    async def evaluate(self, problem: Problem, program: str, *, preamble: str | None = None) -> Verdict:
        """The verdict per test, public then private (``preamble`` None: the program alone, as
        LiveCodeBench runs it)."""
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
        harness = harness_program("lcb_harness", {"KZ_CODE": with_preamble(program, preamble), "KZ_FUNC_NAME": task.func_name,
                                                  "KZ_TIMEOUT": timeout})  # fmt: skip
        judged = harness_problem(
            problem,
            program_entry=ENTRY,
            inputs=[(test.input,) for test in task.tests],
            expected=expected,
            reference_seconds=reference_seconds_for(self.sandbox.config, (timeout + 1) * len(task.tests) + 5),
        )
        return per_test(await self.sandbox.evaluate(judged, harness), task.tests)


def per_test(verdict: Verdict, tests: Sequence[TestCase]) -> Verdict:
    """The verdict over the task's tests: every test must have run and passed (a test never
    reported fails). A failing test is told as the dataset states it: ``failing_input`` its input
    text, ``expected`` its output text, ``got`` the candidate's output (stdin: its lines)."""
    passed = verdict.passed and verdict.tests_total == len(tests)
    failing = failing_argument(verdict.failing_input)
    test = next((t for t in tests if t.input == failing), None)
    return replace(
        verdict,
        passed=passed,
        status=verdict.status if passed or not verdict.passed else Status.FAILED,
        tests_total=len(tests),
        failing_input=failing if isinstance(failing, str) else verdict.failing_input,
        expected=test.output if test is not None else verdict.expected,
        got=_output(verdict.got),
    )


def _output(got: str | None) -> str | None:
    """The child's answer as text: a stdin normal form back to its lines, a functional ``{"v": x}`` as ``x``."""
    value = judged_value(got)
    if isinstance(value, dict) and set(value) == {"v"}:
        return repr(value["v"])
    if isinstance(value, list) and all(isinstance(line, list) and len(line) == 2 for line in value):
        lines = []
        for kind, content in value:
            if kind == "numbers" and isinstance(content, list):
                lines.append(" ".join(_number(key) for key in content))
            else:
                lines.append(str(content))
        return "\n".join(lines)
    return got


def _number(key: object) -> str:
    try:
        return str(Decimal(str(key)))
    except ArithmeticError:
        return str(key)
