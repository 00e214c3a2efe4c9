"""Pages of memories in MCP's shape: ``cursor`` in, ``nextCursor`` out; at most ``limit`` memories
and ``PAGE_BYTES`` a page. A cursor (base64url JSON) holds the position after the page and a
fingerprint of the listing's arguments, so one passed with other arguments is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from koderz.cortex.limits import PAGE_BYTES, json_bytes


class CursorError(ValueError):
    """A cursor that is not one this server gave for these arguments."""


@dataclass(frozen=True)
class Page:
    memories: list[dict[str, Any]]
    next_cursor: str | None


def fingerprint(*arguments: Any) -> str:
    """A short digest of the arguments that define a listing (tool, query, filters, order)."""
    text = json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def decode_cursor(cursor: str | None, query: str) -> list[float] | None:
    """The position a cursor stands for; ``CursorError`` if it is not of this listing."""
    if not cursor:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        key = data["k"]
        valid = data["q"] == query and isinstance(key, list) and all(isinstance(k, int | float) for k in key)
    except (ValueError, TypeError, KeyError, binascii.Error):
        valid = False
    if not valid:
        raise CursorError(
            f"cursor {cursor[:40]!r} is not a nextCursor of this listing (pass it back unchanged, with the same"
            " arguments)"
        )
    return list(key)


def fill(rows: list[tuple[dict[str, Any], list[float]]], limit: int, query: str) -> Page:
    """The page of ``rows`` (fetched ``limit + 1``, each with its position) within ``limit`` and ``PAGE_BYTES``."""
    taken: list[dict[str, Any]] = []
    size = 0
    for memory, _ in rows[:limit]:
        weight = json_bytes(memory) + 1
        if taken and size + weight > PAGE_BYTES:
            break
        taken.append(memory)
        size += weight
    if len(rows) == len(taken) or not taken:
        return Page(taken, None)
    raw = json.dumps({"q": query, "k": rows[len(taken) - 1][1]}, separators=(",", ":")).encode()
    return Page(taken, base64.urlsafe_b64encode(raw).decode().rstrip("="))
