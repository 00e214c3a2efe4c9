"""The sandbox's wire format: plain values of builtin types, as tagged JSON.

This module is stdlib-only and self-contained: the untrusted child runs it as part of
``child.py`` (which inlines it) and the trusted parent uses it to decode. Only exact
builtin types are encodable (no subclasses, no objects with custom ``__eq__``);
anything else raises ``UnencodableValue``. Decoding accepts only what encoding makes,
so whatever bytes the child writes, the parent gets builtin values or an error.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

MAX_DEPTH = 100
_SMALL_INT = 10**15


class UnencodableValue(TypeError):
    """A value that is not plain data of builtin types."""


def _enc(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise UnencodableValue("value nested deeper than %d levels (or cyclic)" % MAX_DEPTH)
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return value if -_SMALL_INT < value < _SMALL_INT else {"t": "int", "v": hex(value)}
    if kind is float:
        return value if math.isfinite(value) else {"t": "float", "v": repr(value)}
    if kind is list:
        return [_enc(item, depth + 1) for item in value]
    if kind is tuple:
        return {"t": "tuple", "v": [_enc(item, depth + 1) for item in value]}
    if kind is dict:
        return {"t": "dict", "v": [[_enc(k, depth + 1), _enc(v, depth + 1)] for k, v in value.items()]}
    if kind is set or kind is frozenset:
        return {"t": kind.__name__, "v": [_enc(item, depth + 1) for item in value]}
    if kind is bytes:
        return {"t": "bytes", "v": base64.b64encode(value).decode("ascii")}
    if kind is complex:
        return {"t": "complex", "v": [_enc(value.real, depth + 1), _enc(value.imag, depth + 1)]}
    raise UnencodableValue("value of type %s is not plain builtin data" % kind.__qualname__)


def encode(value: Any) -> str:
    """Encode a plain value as one line of JSON."""
    return json.dumps(_enc(value, 0), separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def to_tree(value: Any) -> Any:
    """Encode to the JSON tree (not text); used where values are embedded in messages."""
    return _enc(value, 0)


_DECODERS = {
    "tuple": lambda v: tuple(v),
    "set": lambda v: set(v),
    "frozenset": lambda v: frozenset(v),
    "dict": lambda v: {k: val for k, val in v},
    "bytes": lambda v: base64.b64decode(v, validate=True),
    "complex": lambda v: complex(v[0], v[1]),
    "int": lambda v: int(v, 16),
    "float": lambda v: {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[v],
}


def from_tree(tree: Any) -> Any:
    """Decode a JSON tree made by ``to_tree``; raises ValueError on anything else."""
    kind = type(tree)
    if tree is None or kind in (bool, int, float, str):
        return tree
    if kind is list:
        return [from_tree(item) for item in tree]
    if kind is dict and set(tree) == {"t", "v"} and tree["t"] in _DECODERS:
        tag, raw = tree["t"], tree["v"]
        if tag in ("int", "float", "bytes"):
            if type(raw) is not str:
                raise ValueError("bad %s payload" % tag)
            return _DECODERS[tag](raw)
        if type(raw) is not list:
            raise ValueError("bad %s payload" % tag)
        items = [from_tree(item) for item in raw]
        if tag == "dict" and not all(type(pair) is list and len(pair) == 2 for pair in items):
            raise ValueError("bad dict payload")
        try:
            return _DECODERS[tag](items)
        except (TypeError, IndexError, KeyError) as exc:
            raise ValueError("bad %s payload: %s" % (tag, exc)) from None
    raise ValueError("not a koderz wire value: %r" % (str(tree)[:80],))


def decode(text: str) -> Any:
    """Decode one line made by ``encode``."""
    return from_tree(json.loads(text))
