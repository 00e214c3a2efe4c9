"""Make a record koderz writes storable: valid UTF-8 within the store's limits (never raises).

Records carry candidates' hostile text: lone surrogates become ``\\udcff`` escapes, NULs ``\\x00``,
long strings are cut with a visible marker (``… [N more characters cut]``), metadata is reduced
to bounded JSON. The writer's choice of what to keep; the server itself refuses, never cuts.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, replace
from itertools import islice
from typing import Any

from koderz.cortex.limits import (
    MAX_CATEGORY,
    MAX_CONTENT,
    MAX_MEMORY_BYTES,
    MAX_METADATA_BYTES,
    MAX_SUMMARY,
    MAX_TAG,
    MAX_TAGS,
    MAX_TITLE,
    json_bytes,
)
from koderz.cortex.store import MemoryRecord

__all__ = ["MAX_CONTENT", "MAX_SUMMARY", "clean_text", "clean_value", "escape", "sanitize"]

MAX_META_TEXT = 4_000  # one metadata string
MAX_META_ITEMS = 64  # keys of one dict, items of one list
MAX_META_DEPTH = 4
MAX_META_VALUES = 1_000  # values kept in one record's metadata, all levels together

_UNSAFE = re.compile(r"[\ud800-\udfff\x00]")


def escape(text: str) -> str:
    """``text`` with lone surrogates and NULs as visible escapes (valid UTF-8; nothing cut)."""
    if _UNSAFE.search(text):
        return _UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if m[0] == "\x00" else f"\\u{ord(m[0]):04x}", text)
    return text


def clean_text(text: object, limit: int) -> str:
    """``text`` as valid UTF-8 of at most ``limit`` characters, a cut marked at its end."""
    value = escape(text if isinstance(text, str) else _to_str(text))
    if len(value) > limit:
        marker = f"… [{len(value) - limit} more characters cut]"
        keep = max(0, limit - len(marker))
        value = f"{value[:keep]}… [{len(value) - keep} more characters cut]"[:limit]
    return value


def _to_str(value: object) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a huge int or a broken __str__ still gets a storable text
        return f"<unprintable {type(value).__name__}>"


def clean_value(value: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """A JSON value within the metadata bounds; past ``MAX_META_VALUES`` values in all (``budget``,
    shared by the recursion) the rest of a container is dropped."""
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


def _bounded_metadata(metadata: object) -> dict[str, Any]:
    value = clean_value(dict(metadata)) if isinstance(metadata, dict) else {}
    size = json_bytes(value)
    if size <= MAX_METADATA_BYTES:
        return value
    text = json.dumps(value, ensure_ascii=False)
    return {"cut": f"metadata of {size} bytes over the {MAX_METADATA_BYTES}-byte limit", "head": text[:4_000]}


def sanitize(record: MemoryRecord) -> MemoryRecord:
    """The record with every field storable and within the store's limits (see the module docstring)."""
    importance = record.importance if isinstance(record.importance, int | float) else 0.5
    importance = min(1.0, max(0.0, float(importance))) if math.isfinite(importance) else 0.5
    clean = replace(
        record,
        title=clean_text(record.title, MAX_TITLE),
        content=clean_text(record.content, MAX_CONTENT),
        category=clean_text(record.category, MAX_CATEGORY) or "experiment",
        tags=tuple(clean_text(tag, MAX_TAG) for tag in list(record.tags)[:MAX_TAGS]),
        importance=importance,
        metadata=_bounded_metadata(record.metadata),
    )
    if json_bytes(asdict(clean)) <= MAX_MEMORY_BYTES:
        return clean
    # text that JSON escapes (control characters) takes up to 6 bytes a character: keep the
    # longest head of the content that fits (binary search), the cut marked
    budget = MAX_MEMORY_BYTES - json_bytes(asdict(replace(clean, content=""))) - 64
    low, high = 0, len(clean.content)
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if json_bytes(clean.content[:middle]) <= budget else (low, middle - 1)
    return replace(clean, content=f"{clean.content[:low]}… [{len(clean.content) - low} more characters cut]")
