"""The store's limits: what one memory, one request and one reply may hold.

The server refuses a value over a limit (never cuts it) and publishes them in its input schemas;
koderz's writers bound their records first (``sanitize.py``). A reply holds at most
``PAGE_BYTES`` of memories, well under the 1 MiB an MCP client's SSE reader accepts.
"""

from __future__ import annotations

import json
from typing import Any

MAX_TITLE = 300  # characters
MAX_CONTENT = 100_000
MAX_CATEGORY = 64
MAX_TAG = 200
MAX_TAGS = 32
MAX_QUERY = 1_000
MAX_SUMMARY = 4_000  # a session's context or summary
MAX_METADATA_BYTES = 32_768  # the metadata object as UTF-8 JSON
MAX_MEMORY_BYTES = 262_144  # one memory as UTF-8 JSON, every field together
PAGE_BYTES = 524_288  # the memories of one reply, as UTF-8 JSON
MAX_PAGE_ITEMS = 100  # memories in one reply
MAX_BATCH = 500  # memories in one remember_batch call
MAX_BATCH_BYTES = 1_048_576  # one remember_batch request the client sends (the HTTP server takes 4 MiB)


class LimitError(ValueError):
    """A value over one of the store's limits; the message names the value and the limit."""


def json_bytes(value: Any) -> int:
    """Size of ``value`` as compact UTF-8 JSON (how it travels in a reply)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))


def check_memory(memory: dict[str, Any]) -> None:
    """Raise ``LimitError`` if the stored form of ``memory`` (its fields as stored) is over a limit."""
    meta = json_bytes(memory["metadata"])
    if meta > MAX_METADATA_BYTES:
        raise LimitError(f"metadata is {meta} bytes as JSON, over the store's limit of {MAX_METADATA_BYTES} bytes")
    total = json_bytes(memory)
    if total > MAX_MEMORY_BYTES:
        raise LimitError(
            f"memory {memory['title'][:60]!r} is {total} bytes as JSON, over the store's limit of"
            f" {MAX_MEMORY_BYTES} bytes per memory"
        )
