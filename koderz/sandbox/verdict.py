"""The verdict on one program, decided by the trusted side."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from koderz.sandbox.mechanism import Mechanism
from koderz.vocab import Status

# the longest text each field may carry (characters); whatever a candidate produced
TEXT_LIMITS = {
    "failing_input": 300,
    "expected": 1000,
    "got": 300,
    "error": 1000,
    "traceback": 2000,
    "output": 64 * 1024,
}


def clean_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters and made valid UTF-8 (lone surrogates escaped)."""
    if len(text) > limit:
        text = text[: max(limit - 20, 0)] + f"...({len(text)} chars)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")[:limit]
    return text


@dataclass(frozen=True)
class Verdict:
    """Outcome of running one candidate program on one problem's tests.

    ``status`` is a verdict ``Status`` (``Status.is_verdict``). For the first failing test,
    ``failing_input``, ``expected`` and ``got`` are short reprs (``expected`` is the reference
    answer, or for HumanEval the failing assertion of the original ``check``); ``error`` carries an
    exception or limit message and ``traceback`` a short traceback whose line numbers count the
    program as the model wrote it. ``base_passed`` (EvalPlus datasets) is True when every base
    input was judged equal, whatever happened on the plus inputs; None for datasets without a
    base/plus split. ``mechanism`` is the containment the program ran under. ``failed_tests``
    names every test that ran and did not pass (at most ``FAILED_LIMIT``, in order): its index
    among the problem's tests, or for BigCodeBench its test method. Every text is bounded and
    valid UTF-8.
    """

    passed: bool
    status: Status
    tests_passed: int
    tests_total: int
    tests_run: int  # the tests whose outcome is known, the failing one included; the rest never ran
    failing_input: str | None = None
    expected: str | None = None
    got: str | None = None
    error: str | None = None
    traceback: str | None = None
    output: str = ""
    duration: float = 0.0
    isolation: dict[str, str] = field(default_factory=dict)
    base_passed: bool | None = None  # EvalPlus datasets: every base (original) test passed
    mechanism: Mechanism | None = None  # the containment the attempt ran under
    failed_tests: tuple[str, ...] = ()  # the tests that ran and did not pass, in order (bounded)

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, str) and item.name in TEXT_LIMITS:
                object.__setattr__(self, item.name, clean_text(value, TEXT_LIMITS[item.name]))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def feedback(self) -> str:
        """A short human-readable account of the failure, for the next prompt."""
        if self.passed:
            return f"All {self.tests_total} tests passed."
        lines = [self._summary()]
        if self.failing_input is not None:
            lines.append(f"Failing input: {self.failing_input}")
        if self.expected is not None:
            lines.append(f"Expected: {self.expected}")
        if self.got is not None:
            lines.append(f"Got: {self.got}")
        if self.error:
            lines.append(f"Error: {self.error}")
        if self.traceback:
            lines.append(self.traceback)
        return "\n".join(lines)

    def _summary(self) -> str:
        """How far the tests got: a test never run is neither passed nor failed."""
        status, run, total = self.status.value, self.tests_run, self.tests_total
        if run <= 0:
            return f"Status: {status} before any of the {total} tests ran."
        if run < total:
            return (
                f"Status: {status} after {run} of {total} tests ran ({self.tests_passed} passed;"
                f" the other {total - run} were not run)."
            )
        return f"Status: {status} ({self.tests_passed}/{total} tests passed)."
