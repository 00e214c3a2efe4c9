"""Make a memory record safe to store: valid UTF-8 text, bounded sizes, JSON-only metadata.

Records carry text that candidate programs produced (error messages, outputs), so
every string may hold lone surrogates, NULs or megabytes. ``sanitize`` returns a
record that every transport and SQLite accept: lone surrogates become ``\\udcff``
escapes, NULs become ``\\x00``, long strings are cut with a marker, and metadata is
reduced to JSON values within fixed depth, width and count. It never raises on any input.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from itertools import islice
from typing import Any

from koderz.cortex.store import MemoryRecord

MAX_TITLE = 300  # characters
MAX_CONTENT = 64_000
MAX_TAG = 200
MAX_TAGS = 32
MAX_META_TEXT = 4_000  # one metadata string
MAX_META_ITEMS = 64  # keys of one dict, items of one list
MAX_META_DEPTH = 4
MAX_META_VALUES = 1_000  # values kept in one record's metadata, all levels together
MAX_CATEGORY = 64
MAX_SUMMARY = 4_000  # a session context or summary

_UNSAFE = re.compile(r"[\ud800-\udfff\x00]")


def clean_text(text: object, limit: int) -> str:
    """``text`` as valid UTF-8 of at most ``limit`` characters (plus a short cut marker)."""
    value = text if isinstance(text, str) else _to_str(text)
    if len(value) > limit:
        value = f"{value[:limit]}… [{len(value) - limit} more characters cut]"
    if _UNSAFE.search(value):
        value = _UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if m[0] == "\x00" else f"\\u{ord(m[0]):04x}", value)
    return value


def _to_str(value: object) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a huge int or a broken __str__ still gets a storable text
        return f"<unprintable {type(value).__name__}>"


def clean_value(value: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """A JSON value (str, finite number, bool, None, list, dict) within the metadata bounds.

    ``budget`` (one number in a list, shared by the recursion) caps the values kept in
    all: past ``MAX_META_VALUES`` the rest of a container is dropped.
    """
    budget = [MAX_META_VALUES] if budget is None else budget
    budget[0] -= 1
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else f"<int of {value.bit_length()} bits>"
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return clean_text(value, MAX_META_TEXT)
    if depth >= MAX_META_DEPTH:
        return f"<{type(value).__name__} nested too deep>"
    if isinstance(value, dict):
        items = islice(value.items(), MAX_META_ITEMS)
        return {clean_text(k, MAX_TAG): clean_value(v, depth + 1, budget) for k, v in items if budget[0] > 0}
    if isinstance(value, list | tuple):
        return [clean_value(v, depth + 1, budget) for v in islice(value, MAX_META_ITEMS) if budget[0] > 0]
    return clean_text(value, MAX_META_TEXT)


def sanitize(record: MemoryRecord) -> MemoryRecord:
    """The record with every field storable (see the module docstring)."""
    importance = record.importance if isinstance(record.importance, int | float) else 0.5
    importance = min(1.0, max(0.0, float(importance))) if math.isfinite(importance) else 0.5
    metadata = clean_value(dict(record.metadata)) if isinstance(record.metadata, dict) else {}
    return replace(
        record,
        title=clean_text(record.title, MAX_TITLE),
        content=clean_text(record.content, MAX_CONTENT),
        category=clean_text(record.category, MAX_CATEGORY) or "experiment",
        tags=tuple(clean_text(tag, MAX_TAG) for tag in list(record.tags)[:MAX_TAGS]),
        importance=importance,
        metadata=metadata,
    )
