"""The seam between the experiment and judging: an ``Evaluator`` decides the ``Verdict`` on one
program. ``dataset.evaluator`` names one in ``EVALUATORS``, started with the sandbox's config and
the ``dataset.*`` keys (e.g. BigCodeBench's ``dataset.time_limit``; docs/architecture.md); each row
imports its evaluator only when started, so the config is checked against this table before
anything heavy is imported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from koderz.datasets.problem import Problem
    from koderz.sandbox.mechanism import Containment
    from koderz.sandbox.sandbox import SandboxConfig
    from koderz.sandbox.verdict import Verdict


class Evaluator(Protocol):
    """Judges programs for one run; safe to call concurrently; ``close`` stops what it started.
    ``prepare`` runs once, before any attempt and while the run's problems load: it raises a
    ``KoderzError`` (one line, exit 2) when the evaluator cannot judge here at all (the sandbox: no
    containment holds)."""

    async def prepare(self, problems: Awaitable[Sequence[Problem]] | None = None) -> object:
        """Before any attempt; awaits ``problems`` only if it needs them (e.g. what to preload)."""
        ...

    async def evaluate(self, problem: Problem, program: str, *, preamble: str | None = None) -> Verdict:
        """The verdict on ``program`` run after ``preamble`` (None: the format's default; "" none)."""
        ...

    async def containment_in_use(self) -> Containment:
        """The containment programs run under (part of a cached verdict's key)."""
        ...

    def close(self) -> None: ...


class DatasetKeys(Protocol):
    """The ``dataset.*`` keys an evaluator is started with (``koderz.config.DatasetConfig``)."""

    @property
    def time_limit(self) -> float:
        """BigCodeBench: seconds for a task's whole suite."""
        ...


def _sandbox(config: SandboxConfig, dataset: DatasetKeys) -> Evaluator:
    from koderz.sandbox.sandbox import Sandbox

    return Sandbox(config)


def _bigcodebench(config: SandboxConfig, dataset: DatasetKeys) -> Evaluator:
    from koderz.bench.bigcodebench import BigCodeBenchEvaluator

    return BigCodeBenchEvaluator.start(config, time_limit=dataset.time_limit)


def _livecodebench(config: SandboxConfig, dataset: DatasetKeys) -> Evaluator:
    from koderz.bench.livecodebench import LiveCodeBenchEvaluator

    return LiveCodeBenchEvaluator.start(config)


EVALUATORS: Mapping[str, Callable[[SandboxConfig, DatasetKeys], Evaluator]] = {
    "humaneval": _sandbox,
    "bigcodebench": _bigcodebench,
    "livecodebench": _livecodebench,
}
