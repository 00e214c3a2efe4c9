"""One protocol for judging a program against a benchmark's tests, and its typed result.

An evaluator turns (problem, program) into a :class:`Judged`: the sandbox's ``Verdict``
(containment, limits, the judge's decision) plus the benchmark's view of it: how many of the
task's tests passed and the first failing test with its message, bounded. A test the
sandboxed child never reported counts as failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from koderz.datasets.problem import Problem
from koderz.sandbox.verdict import Verdict, clean_text

MESSAGE_LIMIT = 2000  # characters of a failing test's message kept for feedback


@dataclass(frozen=True)
class Judged:
    """A benchmark verdict. ``passed`` only when every test of the task passed."""

    passed: bool
    status: str  # the sandbox's status vocabulary (passed, failed, error, timeout, memory, ...)
    tests_passed: int
    tests_total: int
    failing_test: str | None  # the first failing test's name (BigCodeBench) or index (LiveCodeBench)
    message: str | None  # its assertion message / expected-vs-got text, bounded
    verdict: Verdict

    def __post_init__(self) -> None:
        if self.message is not None:
            object.__setattr__(self, "message", clean_text(self.message, MESSAGE_LIMIT))

    def feedback(self) -> str:
        """For ``mode=iterative``: the failing test and why, bounded."""
        if self.passed:
            return f"All {self.tests_total} tests passed."
        lines = [f"Status: {self.status} ({self.tests_passed}/{self.tests_total} tests passed)."]
        if self.failing_test is not None:
            lines.append(f"Failing test: {self.failing_test}")
        if self.message:
            lines.append(self.message)
        return "\n".join(lines)


class BenchJudge(Protocol):
    """Judges one program on one problem of its benchmark, with per-test detail (BigCodeBench,
    LiveCodeBench). Not yet behind ``koderz.evaluators.Evaluator``, the experiment's seam: wiring
    these formats into runs is issue 27's next step."""

    async def judge(self, problem: Problem, program: str) -> Judged: ...
