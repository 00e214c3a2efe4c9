"""MBPP+ input types that JSON cannot carry (tuples, sets, complex numbers).

Ported from EvalPlus ``evalplus/data/mbpp.py::mbpp_deserialize_inputs`` (Apache-2.0,
see ``data/LICENSE-evalplus-data.txt``): without it the canonical solutions receive
lists where the original tests pass tuples.
"""

from __future__ import annotations

from typing import Any

_TUPLE_ARGS = {2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726, 740, 744, 809}  # fmt: skip
_NESTED_TUPLE_ARGS = {63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780}
_FIRST_ARG_TUPLE_LIST = {75, 413, 444, 753}
_FIRST_ARG_TUPLE = {250, 405, 446, 617, 720, 763, 808}
_NESTED_THEN_TUPLE = {259, 401, 445}
_ALL_TUPLES = {580, 615, 791}


def _all_tuples(value: Any) -> Any:
    return tuple(_all_tuples(item) for item in value) if isinstance(value, list) else value


def deserialize_inputs(task_id: str, inputs: list[list[Any]]) -> list[Any]:
    """Restore the Python argument types of one MBPP+ task's inputs."""
    number = int(task_id.split("/")[-1])
    if number in _TUPLE_ARGS:
        return [[tuple(arg) for arg in inp] for inp in inputs]
    if number in _NESTED_TUPLE_ARGS:
        return [[[tuple(item) for item in arg] for arg in inp] for inp in inputs]
    if number in _FIRST_ARG_TUPLE_LIST:
        return [[[tuple(item) for item in inp[0]], inp[1]] for inp in inputs]
    if number in (106, 750):
        return [[inp[0], tuple(inp[1])] for inp in inputs]
    if number == 115:  # EvalPlus uses {} (a dict) for empty members; kept as upstream
        return [[[set(item) if isinstance(item, list) and item else {} for item in inp[0]]] for inp in inputs]
    if number == 124:
        return [(float(inp[0]), complex(inp[1])) for inp in inputs]
    if number in _FIRST_ARG_TUPLE:
        return [[tuple(inp[0]), inp[1]] for inp in inputs]
    if number in _NESTED_THEN_TUPLE:
        nested = [[[tuple(item) for item in arg] for arg in inp] for inp in inputs]
        return [[tuple(arg) for arg in inp] for inp in nested]
    if number == 278:
        nested = [[[tuple(item) if isinstance(item, list) else item for item in inp[0]]] for inp in inputs]
        return [[tuple(arg) for arg in inp] for inp in nested]
    if number == 307:
        return [[tuple(inp[0]), inp[1], inp[2]] for inp in inputs]
    if number == 722:
        return [[{key: tuple(value) for key, value in inp[0].items()}, *inp[1:]] for inp in inputs]
    if number == 252:
        return [[complex(inp[0])] for inp in inputs]
    if number in _ALL_TUPLES:
        return [_all_tuples(inp) for inp in inputs]
    return inputs
