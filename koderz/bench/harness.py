"""Shared by the benchmark evaluators: the child-side harness as a program, the problem the
sandbox judges, and the sandbox's lifetime behind the ``Evaluator`` protocol.

A benchmark verdict is the sandbox's ``Verdict`` restated per test of the task: ``tests_passed``
/ ``tests_total`` count the task's own tests, ``failing_input`` names the first failing test
(BigCodeBench: the test method; LiveCodeBench: the test's input) and ``expected``/``got``/``error``
say why, bounded. One shape for every format, from the judge to the records and MLflow.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Awaitable, Sequence
from importlib import resources
from typing import Any

from koderz.answers.wire import encode
from koderz.datasets.expected import Expected
from koderz.datasets.problem import Problem
from koderz.sandbox.mechanism import Containment
from koderz.sandbox.sandbox import Sandbox, SandboxConfig


def harness_program(module: str, values: dict[str, Any]) -> str:
    """The harness file ``module`` (in this package) with its ``KZ_*`` values appended."""
    source = (resources.files("koderz.bench") / f"{module}.py").read_text()
    return source + "\n" + "".join(f"{name} = {value!r}\n" for name, value in values.items())


def reference_seconds_for(config: SandboxConfig, cpu_seconds: float) -> float:
    """The ``Problem.reference_seconds`` that gives an attempt ``cpu_seconds`` of CPU time."""
    return max(0.0, (math.ceil(cpu_seconds) - config.cpu_floor) / config.cpu_factor) if config.cpu_factor else 0.0


def harness_problem(
    problem: Problem,
    *,
    program_entry: str,
    inputs: Sequence[tuple[Any, ...]],
    expected: Sequence[Any],
    reference_seconds: float,
) -> Problem:
    """The problem the sandbox judges: the harness's entry point called on ``inputs``, each
    answer compared by the trusted judge with ``expected`` (which never enters the child)."""
    return Problem(
        task_id=problem.task_id,
        prompt="",
        entry_point=program_entry,
        canonical_solution="",
        tests="",
        dataset=problem.dataset,
        inputs=[tuple(i) for i in inputs],
        expected=Expected([encode(e) for e in expected]),
        reference_seconds=reference_seconds,
    )


def judged_value(text: str | None) -> object:
    """A value out of the judge's repr of it (the text itself when it is no literal)."""
    if text is None:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def failing_argument(failing_input: str | None) -> object:
    """The failing call's one argument out of the judge's repr of its arguments (``('x',)``)."""
    value = judged_value(failing_input)
    return value[0] if isinstance(value, tuple) and len(value) == 1 else value


def with_preamble(program: str, preamble: str | None) -> str:
    """The program as it runs: ``preamble`` first (None or "": the program alone, as the benchmark runs it)."""
    return f"{preamble}\n{program}" if preamble else program


class SandboxEvaluator:
    """The part every benchmark evaluator shares: the sandbox it judges in, started and stopped with it."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def prepare(self, problems: Awaitable[Sequence[Problem]] | None = None) -> Containment:
        return await self.sandbox.prepare()

    async def containment_in_use(self) -> Containment:
        return await self.sandbox.containment_in_use()

    def close(self) -> None:
        self.sandbox.close()
