"""koderz's judge decides exactly as EvalPlus 0.3.1's own code on a generated corpus of edge values.

Each run of answers goes through EvalPlus's ``untrusted_check`` (its real comparison in
``unsafe_execute``, in a process of its own, with ``fast_check=False`` so that every
input is decided) and through koderz's ``Collector`` fed the wire lines a sandboxed child
would write (wire text, fast path, bounded decoding, the oracle). The decisions must be
identical input by input, the ``atol`` quirk (1e-6 from the first float answer on)
included. ``find_zero`` is left out: koderz deliberately judges it like the original
HumanEval check (EvalPlus 0.3.1's rule fails its own canonical solution).
"""

from __future__ import annotations

import math
import pickle
import random
import re
from typing import Any

import pytest

from koderz.answers.oracle import MBPP_OUTPUT_NOT_NONE_TASKS, MBPP_OUTPUT_SET_EQ_TASKS, is_floats
from koderz.answers.wire import RegexMatch, encode
from koderz.datasets.expected import Expected, compact
from koderz.datasets.problem import Problem
from koderz.sandbox.judge import AnswerLimits, Collector

evalplus_eval = pytest.importorskip("evalplus.eval")

LIMITS = AnswerLimits(send_limit=1 << 20, answer_bytes=64 << 20, max_depth=100, max_items=400_000, max_int_digits=10**6)
RAISES = "<the candidate raises>"
MATCH = "<the candidate returns re.match('a', 'a')>"
NAN = float("nan")

SCALARS: list[Any] = [
    0,
    1,
    -1,
    True,
    False,
    2**63,
    2**64,
    10**30,
    0.0,
    -0.0,
    1.0,
    1.0000001,
    1.00001,
    0.1 + 0.2,
    0.3,
    1e-7,
    1e308,
    math.inf,
    -math.inf,
    NAN,
    "a",
    "",
    None,
    1 + 2j,
    complex(1, 2.0000001),
]
CONTAINERS: list[Any] = [
    [],
    (),
    [1.0, 2.0],
    [1.0, 2.0000001],
    [1, 2],
    [1, 2.0000001],
    (1.0, 2.0),
    [[1.0], [2.0]],
    [[1.0, 2.0]],
    [[1.0, 2.0], [3.0]],  # ragged
    [[1.0, 2.0], [3.0, 4.0]],
    [[1.0, 2.0], [3.0, 4.0000001]],
    [math.inf, 1.0],
    [-math.inf, 1.0],
    [1e308, 1.0],
    [NAN, 1.0],
    [True, 1.0],
    [1, "a"],
    ["a", "b"],
    [None, 1.0],
    {1: 1.0},
    {1: 1.0000001},
    {1.0, 2.0},
    [2**64, 1],
    [[1.0]],
    [1.0],
    (1.0,),
    [[[1.0]]],
]


def _near(value: Any, rng: random.Random) -> Any:
    """Something close to ``value``: a float nudge, a type or shape change, or another value."""
    choice = rng.randrange(8)
    if isinstance(value, float) and math.isfinite(value) and choice < 3:
        return value + rng.choice([1e-9, 1e-7, 1e-6, 2e-6, 1e-3]) * rng.choice([1, -1])
    if isinstance(value, list) and choice < 2:
        return tuple(value) if choice == 0 else [[item] for item in value]
    if isinstance(value, tuple) and choice < 2:
        return list(value)
    if choice < 4:
        return value
    return rng.choice(SCALARS + CONTAINERS)


def _corpus(seed: int = 1234) -> list[tuple[str, str, float, list[tuple[Any, Any, tuple[Any, ...]]]]]:
    """Runs of (family, entry point, atol, [(answer, reference answer, args)])."""
    rng = random.Random(seed)
    pool = SCALARS + CONTAINERS
    runs: list[tuple[str, str, float, list[tuple[Any, Any, tuple[Any, ...]]]]] = []
    for atol in (0.0, 0.0, 0.0, 1e-6, 1e-3, 1e-9):
        for _ in range(4):
            items: list[tuple[Any, Any, tuple[Any, ...]]] = []
            for _ in range(rng.randint(4, 24)):
                exp = rng.choice(pool)
                out = RAISES if rng.random() < 0.05 else _near(exp, rng)
                items.append((out, exp, ()))
            runs.append(("humaneval", "f", atol, items))
    sets = [[1, 2], [2, 1], [1, 2, 2], [[1]], (1, 2), [1.0, 2.0], "ab", None]
    for entry in sorted(MBPP_OUTPUT_SET_EQ_TASKS)[:3]:
        runs.append(("mbpp", entry, 0.0, [(rng.choice(sets), rng.choice(sets[:6]), ()) for _ in range(12)]))
    matches = [RegexMatch("a"), None, True, False, "a", 0]
    for entry in sorted(MBPP_OUTPUT_NOT_NONE_TASKS):
        runs.append(("mbpp", entry, 0.0, [(rng.choice(matches), rng.choice([True, False]), ()) for _ in range(10)]))
    runs.append(("mbpp", "sum_div", 0.0, [(out, exp, ()) for out in (0, 1, 0.0, None) for exp in (0, 1, 2.5)]))
    runs.append(
        ("mbpp", "surface_Area", 0.0, [(out, 33, (3, 4)) for out in (33, 33.0000001, 34, 32.5, "33", None, 33.4)])
    )
    runs.append(
        ("mbpp", "digit_distance_nums", 0.0, [(out, 6, (123, 456)) for out in (6, 9, 6.0, "6", -1)] + [(9, 6, (-1, 5))])
    )
    runs.append(("mbpp", "are_equivalent", 0.0, [(out, True, ()) for out in (True, False, None, "x")]))
    runs.append(("mbpp", "plain_task", 0.0, [(item[0], item[1], ()) for item in runs[0][3]]))
    return runs


def _evalplus_decisions(family: str, entry: str, atol: float, items: list[tuple[Any, Any, tuple[Any, ...]]]) -> list:
    """Run the answers through EvalPlus 0.3.1's own ``untrusted_check`` (a candidate that
    returns them in order, or raises where the corpus says so)."""
    answers = [MATCH if isinstance(out, RegexMatch) else out for out, _, _ in items]
    code = (
        "import pickle, re\n"
        f"_ANSWERS = pickle.loads({pickle.dumps(answers)!r})\n"
        "_CALLS = [0]\n"
        f"def {entry}(*args):\n"
        "    value = _ANSWERS[_CALLS[0]]\n"
        "    _CALLS[0] += 1\n"
        f"    if value == {RAISES!r}:\n"
        "        raise ValueError('the candidate raises')\n"
        f"    return re.match('a', 'a') if value == {MATCH!r} else value\n"
    )
    inputs = [list(args) for _, _, args in items]
    expected = [exp for _, exp, _ in items]
    _, details = evalplus_eval.untrusted_check(
        family, code, inputs, entry, expected, atol, [0.0] * len(items), fast_check=False
    )
    return [bool(d) for d in details]


def _koderz_decisions(family: str, entry: str, atol: float, items: list[tuple[Any, Any, tuple[Any, ...]]]) -> list:
    """Feed the lines a sandboxed child would write to koderz's collector; read each decision."""
    expected = [exp for _, exp, _ in items]
    problem = Problem(
        task_id="corpus",
        prompt="",
        entry_point=entry,
        canonical_solution="",
        tests="",
        dataset="mbpp_plus" if family == "mbpp" else "humaneval_plus",
        inputs=tuple(args for _, _, args in items),
        base_input_count=len(items),
        tolerance=atol,
        expected=Expected(
            [compact(encode(v)) for v in expected], floats=frozenset(i for i, v in enumerate(expected) if is_floats(v))
        ),
        extra={"family": family},
    )
    collector = Collector(problem, LIMITS)
    collector.feed(b"S 0 {}")
    decisions = []
    for index, (out, _, _) in enumerate(items):
        before = collector.passed
        if out == RAISES:
            collector.feed(b'E %d {"err":"ValueError: the candidate raises"}' % index)
        else:
            real = re.match("a", "a") if isinstance(out, RegexMatch) else out  # as the child encodes it
            collector.feed(b"V %d %s" % (index, encode(real).encode()))
        decisions.append(collector.passed > before)
    return decisions


def test_corpus_covers_the_edge_cases() -> None:
    runs = _corpus()
    values = [v for _, _, _, items in runs for out, exp, _ in items for v in (out, exp)]
    assert any(isinstance(v, float) and math.isinf(v) for v in values)
    assert any(isinstance(v, float) and math.isnan(v) for v in values)
    assert any(isinstance(v, tuple) for v in values) and any(v == [] for v in values)
    assert sum(len(items) for _, _, _, items in runs) >= 400


def test_decisions_identical_to_evalplus() -> None:
    differences = []
    passes = fails = 0
    for family, entry, atol, items in _corpus():
        theirs = _evalplus_decisions(family, entry, atol, items)
        ours = _koderz_decisions(family, entry, atol, items)
        assert len(theirs) == len(items), (entry, "EvalPlus stopped early")
        passes += sum(theirs)
        fails += len(theirs) - sum(theirs)
        for index, (a, b) in enumerate(zip(theirs, ours, strict=True)):
            if a != b:
                out, exp, _ = items[index]
                differences.append((family, entry, atol, index, repr(out), repr(exp), "evalplus" if a else "koderz"))
    assert differences == []
    assert passes > 100 and fails > 100  # the corpus exercises both decisions
