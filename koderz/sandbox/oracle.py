"""Compare a candidate's outputs with expected ones, as the original tests would.

Plain ``==`` first (so ``True`` passes where ``1`` is expected, as in the original
asserts), then the dataset's float tolerance (``1e-6`` enforced for float outputs,
``rtol=1e-7`` as ``np.allclose``), then EvalPlus's special oracles for tasks with
several right answers (ported from ``evalplus/eval/_special_oracle.py``, Apache-2.0).
``find_zero`` (HumanEval/32) is judged like the original ``check``: ``|poly(xs, x)| <
1e-4``, not by EvalPlus 0.3.1's stricter rule that fails the canonical solution.
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
FIND_ZERO_TOLERANCE = 1e-4
FLOAT_TOLERANCE = 1e-6
RTOL = 1e-7


def normalize_expected(family: str, entry_point: str, value: Any) -> Any:
    """EvalPlus stores only ``is not None`` for MBPP tasks whose outputs are regex matches."""
    if family == "mbpp" and entry_point in MBPP_OUTPUT_NOT_NONE_TASKS and not isinstance(value, bool):
        return value is not None
    return value


def _poly(xs: list[Any], x: float) -> float:
    return sum(coeff * math.pow(x, i) for i, coeff in enumerate(xs))


def _surface_area(base_edge: float, height: float) -> int:
    slant = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant) / 2)


def _digit_distance_nums(num1: int, num2: int) -> int:
    a, b = str(num1), str(num2)
    width = max(len(a), len(b))
    return sum(abs(int(x) - int(y)) for x, y in zip(a.zfill(width), b.zfill(width), strict=True))


def _is_floats(value: Any) -> bool:
    if isinstance(value, float):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, float) for v in value)


def _flatten(value: Any) -> list[Any] | None:
    if isinstance(value, (list, tuple)):
        flat: list[Any] = []
        for item in value:
            inner = _flatten(item)
            if inner is None:
                return None
            flat.extend(inner)
        return flat
    if isinstance(value, (int, float)) and not isinstance(value, complex):
        return [value]
    return None


def _allclose(out: Any, exp: Any, atol: float) -> bool:
    if type(out) is not type(exp):
        return False
    if isinstance(exp, (list, tuple)) and len(out) != len(exp):
        return False
    a, b = _flatten(out), _flatten(exp)
    if a is None or b is None or len(a) != len(b):
        return False
    try:
        return all(abs(x - y) <= atol + RTOL * abs(y) for x, y in zip(a, b, strict=True))
    except (TypeError, OverflowError):
        return False


def outputs_match(family: str, entry_point: str, args: Any, out: Any, exp: Any, atol: float) -> bool:
    """True when ``out`` is an accepted answer for ``args`` whose reference answer is ``exp``."""
    try:
        exact = out == exp
        if family == "mbpp":
            if entry_point == "are_equivalent":
                return True
            if entry_point == "sum_div":
                exact = exact or out == 0
            elif entry_point == "surface_Area":
                exact = exact or abs(out - _surface_area(*args)) <= atol
            elif entry_point == "digit_distance_nums":
                exact = exact or out == _digit_distance_nums(*args)
            elif entry_point in MBPP_OUTPUT_SET_EQ_TASKS:
                exact = set(out) == set(exp)
            elif entry_point in MBPP_OUTPUT_NOT_NONE_TASKS:
                exact = out == exp if isinstance(out, bool) else exp == (out is not None)
        if family == "humaneval" and entry_point == "find_zero":
            return isinstance(out, (int, float)) and abs(_poly(*args, out)) < FIND_ZERO_TOLERANCE
        if exact:
            return True
        if atol == 0 and _is_floats(exp):
            atol = FLOAT_TOLERANCE
        return atol != 0 and _allclose(out, exp, atol)
    except Exception:  # noqa: BLE001 - a comparison that raises (e.g. set() of a non-iterable) is a mismatch
        return False
