"""The one Problem type every dataset loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One benchmark task.

    ``prompt`` is what the model sees (signature and docstring); ``tests`` is the
    original test code (HumanEval's ``check`` function, MBPP's asserts); ``inputs``
    are the argument lists the sandbox calls the entry point with; ``tolerance`` is
    the absolute tolerance for float outputs (0 = exact, 1e-6 enforced for floats).
    ``dataset`` names the loader (it selects the oracle's special cases).
    """

    task_id: str
    prompt: str
    entry_point: str
    canonical_solution: str
    tests: str
    dataset: str
    inputs: tuple[Any, ...] = ()
    base_input_count: int = 0  # the first N of ``inputs`` are the original (base) tests
    tolerance: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def reference_program(self) -> str:
        """The canonical solution as a whole program (prompt + body, human-eval style)."""
        return self.prompt + self.canonical_solution
