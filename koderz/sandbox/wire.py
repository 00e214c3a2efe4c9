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

MAX_DEPTH = 100
MAX_OUTPUT = 64 * 1024 * 1024  # characters of one encoded answer
_SMALL_INT = 10**15
# stdlib dict subclasses travel as plain dicts (MBPP's canonical solutions return Counters);
# recognised by name so that the child need not import ``collections`` or ``re`` (a fake
# with the same name can only produce plain data, which is all the parent compares)
_DICT_NAMES = {"Counter", "OrderedDict", "defaultdict"}
# json.dumps(tree, separators=(",", ":"), ensure_ascii=True, allow_nan=False), without
# importing the ``json`` package (and ``re``) in the child
_ENCODER = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ":", ",", False, False, False)


def _is_dict(kind: type) -> bool:
    return kind is dict or (
        kind.__name__ in _DICT_NAMES and kind.__module__ == "collections" and issubclass(kind, dict)
    )


def _is_match(kind: type) -> bool:
    return kind.__name__ == "Match" and kind.__module__ == "re"


class UnencodableValue(TypeError):
    """A value that is not plain data of builtin types."""


def _enc(value: object, depth: int) -> object:
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
        return [_enc(item, depth + 1) for item in value]
    if kind is tuple:
        return {"t": "tuple", "v": [_enc(item, depth + 1) for item in value]}
    if _is_dict(kind):
        return {"t": "dict", "v": [[_enc(k, depth + 1), _enc(v, depth + 1)] for k, v in value.items()]}
    if kind is set or kind is frozenset:
        return {"t": kind.__name__, "v": [_enc(item, depth + 1) for item in value]}
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


def to_tree(value: object) -> object:
    """Encode to the JSON tree (not text); used where values are embedded in messages."""
    return _enc(value, 0)


class RegexMatch:
    """A ``re.Match`` the candidate returned: equal to nothing, but not ``None``."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"<re.Match {self.text!r}>"


_DECODERS = {
    "tuple": lambda v: tuple(v),
    "set": lambda v: set(v),
    "frozenset": lambda v: frozenset(v),
    "dict": lambda v: dict(v),
    "bytes": lambda v: __import__("base64").b64decode(v, validate=True),
    "complex": lambda v: complex(v[0], v[1]),
    "int": lambda v: int(v, 16),
    "float": lambda v: {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[v],
    "match": lambda v: RegexMatch(v),
}


def from_tree(tree: object) -> object:
    """Decode a JSON tree made by ``to_tree``; raises ValueError on anything else."""
    kind = type(tree)
    if tree is None or kind in (bool, int, float, str):
        return tree
    if kind is list:
        return [from_tree(item) for item in tree]
    if kind is dict and set(tree) == {"t", "v"} and tree["t"] in _DECODERS:
        tag, raw = tree["t"], tree["v"]
        if tag == "match":
            if type(raw) is not str:
                raise ValueError("bad match payload")
            return RegexMatch(raw)
        if tag in ("int", "float", "bytes"):
            if type(raw) is not str:
                raise ValueError(f"bad {tag} payload")
            return _DECODERS[tag](raw)
        if type(raw) is not list:
            raise ValueError(f"bad {tag} payload")
        items = [from_tree(item) for item in raw]
        if tag == "dict" and not all(type(pair) is list and len(pair) == 2 for pair in items):
            raise ValueError("bad dict payload")
        try:
            return _DECODERS[tag](items)
        except (TypeError, IndexError, KeyError) as exc:
            raise ValueError(f"bad {tag} payload: {exc}") from None
    raise ValueError(f"not a koderz wire value: {str(tree)[:80]!r}")


def decode(text: str) -> object:
    """Decode one line made by ``encode``."""
    import json

    return from_tree(json.loads(text))
