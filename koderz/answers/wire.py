"""The sandbox's wire format: plain values of builtin types, as tagged JSON.

This module is stdlib-only and self-contained: the untrusted child runs it as part of
``child.py`` (which inlines it) and the trusted parent uses it to decode. Only exact
builtin types are encodable (no subclasses, no objects with custom ``__eq__``);
anything else raises ``UnencodableValue``. Decoding accepts only what encoding makes,
so whatever bytes the child writes, the parent gets builtin values or an error.
"""

from __future__ import annotations

import _json
import math

TYPE_CHECKING = False  # no ``typing`` import at run time: the child pays for every import
if TYPE_CHECKING:
    from typing import Any

MAX_DEPTH = 100
MAX_OUTPUT = 64 * 1024 * 1024  # characters of one encoded answer
_SMALL_INT = 10**15
_FLAT_MIN = 16  # shorter sequences are encoded item by item
_TEXTUAL = {str, bool, type(None)}
_NUMBERS = {int, float, bool}
# stdlib dict subclasses travel as plain dicts (MBPP's canonical solutions return Counters);
# recognised by name so that the child need not import ``collections`` or ``re`` (a fake
# with the same name can only produce plain data, which is all the parent compares)
_DICT_NAMES = {"Counter", "OrderedDict", "defaultdict"}
# json.dumps(tree, separators=(",", ":"), ensure_ascii=True, allow_nan=False), without
# importing the ``json`` package (and ``re``) in the child
_ENCODER = _json.make_encoder(
    None, lambda value: _enc(value, 0), _json.encode_basestring_ascii, None, ":", ",", False, False, False
)


def _is_dict(kind: type) -> bool:
    return kind is dict or (
        kind.__name__ in _DICT_NAMES and kind.__module__ == "collections" and issubclass(kind, dict)
    )


def _is_match(kind: type) -> bool:
    return kind.__name__ == "Match" and kind.__module__ == "re"


class UnencodableValue(TypeError):
    """A value that is not plain data of builtin types."""


def _flat(items: Any) -> bool:
    """True when every item of a long sequence encodes as itself (an exact str, bool or None, a
    finite float, an int below 10**15), checked at C speed: the sequence then goes to the JSON
    encoder as it is, with the text item-by-item encoding would give."""
    if len(items) < _FLAT_MIN:
        return False
    kinds = set(map(type, items))
    if kinds <= _TEXTUAL:
        return True
    if not kinds <= _NUMBERS:
        return False
    # ints bounded first (a nan first in the list makes ``max`` return nan: not below the bound)
    if int in kinds and not max(map(abs, items)) < _SMALL_INT:
        return False
    return all(map(math.isfinite, items))


def _enc(value: Any, depth: int) -> object:
    if depth > MAX_DEPTH:
        raise UnencodableValue(f"value nested deeper than {MAX_DEPTH} levels (or cyclic)")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return value if -_SMALL_INT < value < _SMALL_INT else {"t": "int", "v": hex(value)}
    if kind is float:
        return value if math.isfinite(value) else {"t": "float", "v": repr(value)}
    if kind is list:
        return value if _flat(value) else [_enc(item, depth + 1) for item in value]
    if kind is tuple:
        return {"t": "tuple", "v": value if _flat(value) else [_enc(item, depth + 1) for item in value]}
    if _is_dict(kind):
        return {"t": "dict", "v": [[_enc(k, depth + 1), _enc(v, depth + 1)] for k, v in value.items()]}
    if kind is set or kind is frozenset:
        items = list(value)
        return {"t": kind.__name__, "v": items if _flat(items) else [_enc(item, depth + 1) for item in items]}
    if kind is bytes:
        return {"t": "bytes", "v": __import__("base64").b64encode(value).decode("ascii")}
    if kind is complex:
        return {"t": "complex", "v": [_enc(value.real, depth + 1), _enc(value.imag, depth + 1)]}
    if _is_match(kind):  # only "is it None" matters for the MBPP regex tasks
        return {"t": "match", "v": str(value.group(0))}
    raise UnencodableValue(f"value of type {kind.__qualname__} is not plain builtin data")


def json_text(tree: object) -> str:
    """Compact ASCII JSON of a tree of builtin values (no NaN/inf), one line."""
    if type(tree) is str:
        return _json.encode_basestring_ascii(tree)
    return "".join(_ENCODER(tree, 0))


def encode(value: object) -> str:
    """Encode a plain value as one line of JSON."""
    return json_text(_enc(value, 0))


class RegexMatch:
    """A ``re.Match`` the candidate returned: equal to nothing, but not ``None``."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"<re.Match {self.text[:80]!r}>"


class OverLimit(ValueError):
    """A well-formed answer beyond one of the trusted side's decoding limits."""


_NON_FINITE = ("nan", "inf", "-inf")


class _Decoder:
    """JSON tree -> value, within limits: nesting depth, values in one answer, digits of one int.

    Each float ``nan`` is a fresh object (``[nan] == [nan]`` must be False, as between
    two processes); plain JSON numbers are only what ``encode`` writes (finite floats,
    ints below 10**15).
    """

    def __init__(self, max_depth: int, max_items: int, max_int_digits: int) -> None:
        self.max_depth, self.max_items, self.max_int_digits = max_depth, max_items, max_int_digits
        self.items = 0
        # hex digits of an int with ``max_int_digits`` decimal digits (log2(10) / 4 each)
        self.max_hex = int(max_int_digits * 0.8305) + 4

    def count(self, n: int) -> None:
        self.items += n
        if self.items > self.max_items:
            raise OverLimit(f"answer has more than {self.max_items} values")

    def value(self, tree: Any, depth: int) -> object:
        if depth > self.max_depth:
            raise OverLimit(f"answer nested deeper than {self.max_depth} levels")
        kind = type(tree)
        if tree is None or kind in (bool, int, str):
            return tree
        if kind is float:
            if not math.isfinite(tree):
                raise ValueError("untagged non-finite float")
            return tree
        if kind is list:
            self.count(len(tree))
            return [self.value(item, depth + 1) for item in tree]
        if kind is dict and len(tree) == 2 and tree.keys() == {"t", "v"}:
            return self.tagged(tree["t"], tree["v"], depth)
        raise ValueError(f"not a koderz wire value: {str(tree)[:80]!r}")

    def tagged(self, tag: object, raw: Any, depth: int) -> object:
        if tag in ("int", "float", "bytes", "match"):
            if type(raw) is not str:
                raise ValueError(f"bad {tag} payload")
            if tag == "int":
                digits = len(raw) - (3 if raw.startswith("-") else 2)
                if digits > self.max_hex:
                    raise OverLimit(f"answer has an int of more than {self.max_int_digits} digits")
                return int(raw, 16)
            if tag == "float":
                if raw not in _NON_FINITE:
                    raise ValueError("bad float payload")
                return float(raw)
            if tag == "match":
                return RegexMatch(raw)
            self.count(len(raw) // 4)
            return __import__("base64").b64decode(raw, validate=True)
        if tag not in ("tuple", "set", "frozenset", "dict", "complex") or type(raw) is not list:
            raise ValueError(f"bad {str(tag)[:20]} payload")
        self.count(len(raw))
        if tag == "dict":
            if not all(type(pair) is list and len(pair) == 2 for pair in raw):
                raise ValueError("bad dict payload")
            return {self.value(k, depth + 1): self.value(v, depth + 1) for k, v in raw}
        items = [self.value(item, depth + 1) for item in raw]
        if tag == "tuple":
            return tuple(items)
        if tag == "set":
            return set(items)
        if tag == "frozenset":
            return frozenset(items)
        real, imag = items if len(items) == 2 else (None, None)
        if type(real) not in (int, float) or type(imag) not in (int, float):
            raise ValueError("bad complex payload")
        return complex(float(real), float(imag))  # type: ignore[arg-type]


def _plain_int(text: str) -> int:
    if len(text) > 17:
        raise ValueError("untagged int beyond 10**15")
    return int(text)


def _no_constant(name: str) -> object:
    raise ValueError(f"JSON constant {name} is not a koderz wire value")


def decode(
    text: str | bytes, *, max_depth: int = MAX_DEPTH, max_items: int = 10**9, max_int_digits: int = 10**9
) -> object:
    """Decode one line made by ``encode``; ValueError (``OverLimit`` for a limit) on anything else.

    Unhashable set members or dict keys raise TypeError, which callers treat like ValueError.
    """
    import json

    tree = json.loads(text, parse_int=_plain_int, parse_constant=_no_constant)
    return _Decoder(max_depth, max_items, max_int_digits).value(tree, 0)
