"""Compare a candidate's outputs with expected ones exactly as EvalPlus 0.3.1 does.

A port of ``evalplus/eval/__init__.py::unsafe_execute`` (Apache-2.0): ``==`` first (so
``True`` passes where ``1`` is expected), the special oracles of
``evalplus/eval/_special_oracle.py`` for tasks with several right answers, then, when the
answer is not equal and a tolerance applies, the same type, the same length and numpy's
``allclose(out, exp, rtol=1e-07, atol=atol)`` (numpy itself: broadcasting, ``inf``
only equal to itself, ``nan`` never equal, ragged or non-numeric values rejected).

EvalPlus's quirk is kept: a task with ``atol == 0`` gets ``atol = 1e-6`` from the first
float answer on (``is_floats``), for the rest of that run of inputs; base and plus inputs
are separate runs. ``Oracle`` carries that state for one run.

One deliberate difference: ``find_zero`` (HumanEval/32) is judged like the original
``check`` (``|poly(xs, x)| < 1e-4``): EvalPlus 0.3.1's oracle ``continue``s before it
records the input as passed, so it fails every answer, its canonical solution included.
"""

from __future__ import annotations

import math
from typing import Any

MBPP_OUTPUT_NOT_NONE_TASKS = {"check_str", "text_match_three", "text_starta_endb"}
MBPP_OUTPUT_SET_EQ_TASKS = {
    "similar_elements",
    "find_char_long",
    "common_in_nested_lists",
    "extract_singly",
    "larg_nnum",
    "intersection_array",
    "find_dissimilar",
    "Diff",
}
MBPP_SPECIAL = (
    MBPP_OUTPUT_NOT_NONE_TASKS
    | MBPP_OUTPUT_SET_EQ_TASKS
    | {
        "are_equivalent",
        "sum_div",
        "surface_Area",
        "digit_distance_nums",
    }
)
FIND_ZERO_TOLERANCE = 1e-4
FLOAT_TOLERANCE = 1e-6
RTOL = 1e-07


def normalize_expected(family: str, entry_point: str, value: Any) -> Any:
    """EvalPlus stores only ``is not None`` for MBPP tasks whose outputs are regex matches."""
    if family == "mbpp" and entry_point in MBPP_OUTPUT_NOT_NONE_TASKS:
        return value is not None
    return value


def is_floats(value: Any) -> bool:
    """EvalPlus's ``is_floats``: a float, or a non-empty list or tuple of floats only."""
    if isinstance(value, float):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, float) for v in value)


def special_oracle(family: str, entry_point: str) -> bool:
    """True for tasks whose answers are not judged by ``==`` alone."""
    if family == "mbpp":
        return entry_point in MBPP_SPECIAL
    return entry_point == "find_zero"


def _poly(xs: list[Any], x: float) -> float:
    return sum(coeff * math.pow(x, i) for i, coeff in enumerate(xs))


def _surface_area(base_edge: float, height: float) -> int:
    slant = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant) / 2)


def _digit_distance_nums(num1: int, num2: int) -> int:
    a, b = str(num1), str(num2)
    width = max(len(a), len(b))
    return sum(abs(int(x) - int(y)) for x, y in zip(a.zfill(width), b.zfill(width), strict=False))


class Oracle:
    """Judges one run of inputs in order (EvalPlus runs base and plus inputs separately)."""

    def __init__(self, family: str, entry_point: str, atol: float) -> None:
        self.family, self.entry_point, self.atol = family, entry_point, atol

    def reached(self, exp_is_floats: bool) -> None:
        """The comparison got past the special oracles (EvalPlus's atol quirk applies)."""
        if self.atol == 0 and exp_is_floats:
            self.atol = FLOAT_TOLERANCE

    def equal_text(self, exp_is_floats: bool) -> bool:
        """The answer's wire text equals the reference's (the caller checked it has no nan and
        that the task has no special oracle): ``out == exp`` holds, so it passes."""
        self.reached(exp_is_floats)
        return True

    def judge(self, args: Any, out: Any, exp: Any) -> bool:
        """True when ``out`` is an accepted answer for ``args`` whose reference answer is ``exp``."""
        try:
            return self._judge(args, out, exp)
        except Exception:  # noqa: BLE001 - EvalPlus counts any exception in the comparison as a failure
            return False

    def _judge(self, args: Any, out: Any, exp: Any) -> bool:
        exact = out == exp
        entry = self.entry_point
        if self.family == "mbpp":
            if entry == "are_equivalent":
                exact = True
            elif entry == "sum_div":
                exact = exact or out == 0
            elif entry == "surface_Area":
                exact = exact or abs(out - _surface_area(*args)) <= self.atol
            elif entry == "digit_distance_nums":
                exact = exact or out == _digit_distance_nums(*args)
            elif entry in MBPP_OUTPUT_SET_EQ_TASKS:
                exact = set(out) == set(exp)
            elif entry in MBPP_OUTPUT_NOT_NONE_TASKS:
                exact = out == exp if isinstance(out, bool) else exp == (out is not None)
        elif entry == "find_zero":
            (coefficients,) = args
            return isinstance(out, (int, float)) and abs(_poly(coefficients, out)) < FIND_ZERO_TOLERANCE
        self.reached(is_floats(exp))
        if not exact and self.atol != 0:
            if type(out) is not type(exp):
                return False
            if isinstance(exp, (list, tuple)) and len(out) != len(exp):
                return False
            import numpy  # here, not at the top: only judges need it (the judge server preloads it)

            return bool(numpy.allclose(out, exp, rtol=RTOL, atol=self.atol))
        return bool(exact)
