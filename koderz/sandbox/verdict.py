"""The verdict on one program, decided by the trusted parent."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("passed", "failed", "error", "timeout", "memory", "killed")


@dataclass(frozen=True)
class Verdict:
    """Outcome of running one candidate program on one problem's tests.

    ``status`` is one of ``STATUSES``. For the first failing test, ``failing_input``,
    ``expected`` and ``got`` are short reprs (``expected`` is the reference answer, or
    for HumanEval the failing assertion of the original ``check``); ``error`` carries an
    exception or limit message and ``traceback`` a short traceback.
    """

    passed: bool
    status: str
    tests_passed: int
    tests_total: int
    failing_input: str | None = None
    expected: str | None = None
    got: str | None = None
    error: str | None = None
    traceback: str | None = None
    output: str = ""
    duration: float = 0.0
    isolation: dict[str, str] = field(default_factory=dict)
    base_passed: bool | None = None  # EvalPlus datasets: every base (original) test passed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def feedback(self) -> str:
        """A short human-readable account of the failure, for the next prompt."""
        if self.passed:
            return f"All {self.tests_total} tests passed."
        lines = [f"Status: {self.status} ({self.tests_passed}/{self.tests_total} tests passed)."]
        if self.failing_input is not None:
            lines.append(f"Failing input: {self.failing_input}")
        if self.expected is not None:
            lines.append(f"Expected: {self.expected}")
        if self.got is not None:
            lines.append(f"Got: {self.got}")
        if self.error:
            lines.append(f"Error: {self.error}")
        if self.traceback:
            lines.append(f"Traceback (most recent call last, truncated):\n{self.traceback}")
        return "\n".join(lines)
