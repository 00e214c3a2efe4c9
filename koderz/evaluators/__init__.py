"""The seam between the experiment and judging: an ``Evaluator`` decides the ``Verdict`` on one program.

``dataset.evaluator`` names one in ``EVALUATORS``. The experiment and the runner see only this
protocol, so a new benchmark format is one module (its evaluator), one row here and its dataset
config. ``humaneval`` (HumanEval, HumanEval+, MBPP+: the entry point called on each input, judged
by the trusted side) is the sandbox itself. Each row imports its evaluator only when started, so the
config can be checked against this table before anything heavy is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from koderz.datasets.problem import Problem
    from koderz.sandbox.mechanism import Containment
    from koderz.sandbox.sandbox import SandboxConfig
    from koderz.sandbox.verdict import Verdict


class Evaluator(Protocol):
    """Judges programs for one run; safe to call concurrently; ``close`` stops what it started."""

    async def evaluate(self, problem: Problem, program: str) -> Verdict: ...

    async def containment_in_use(self) -> Containment:
        """The containment programs run under (part of a cached verdict's key)."""
        ...

    def close(self) -> None: ...


def _sandbox(config: SandboxConfig) -> Evaluator:
    from koderz.sandbox.sandbox import Sandbox

    return Sandbox(config)


EVALUATORS: Mapping[str, Callable[[SandboxConfig], Evaluator]] = {
    "humaneval": _sandbox,
}
