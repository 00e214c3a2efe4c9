"""Inputs and expected outputs kept compact: the wire text of each answer, or a digest for big ones.

``Expected`` is the sequence a ``Problem`` carries as ``expected``. Small answers are
stored as their wire text (``koderz.answers.wire.encode``), so the sandbox can accept an
identical answer by comparing text; answers longer than ``INLINE_LIMIT`` characters are
stored as a SHA-256 digest, their length, a short head and the offset of their wire text in
a side file, read (and checked against the digest) only when that value itself is needed
(a mismatch to explain, a tolerance to apply). Indexing returns the decoded value, as a
tuple would. Which answers are floats in EvalPlus's sense (``is_floats``) is recorded
too, since a float answer changes EvalPlus's tolerance for the inputs after it.
"""

from __future__ import annotations

import hashlib
import marshal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from koderz.answers.wire import decode
from koderz.errors import DatasetError
from koderz.safefiles import read_range

INLINE_LIMIT = 4096


def digest(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


Entry = str | tuple[str, int, str, int]


def compact(text: str, offset: int = -1) -> Entry:
    """The stored form of one answer's wire text (``offset``: where that text is in the side file)."""
    return text if len(text) <= INLINE_LIMIT else (digest(text), len(text), text[:200], offset)


class Expected(Sequence):
    """Reference answers of one task, decoded on demand."""

    __slots__ = ("_entries", "_floats", "_side")

    def __init__(self, entries: list[Entry], side: Path | None = None, floats: frozenset[int] = frozenset()) -> None:
        self._entries = entries
        self._side = side
        self._floats = floats

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        entry = self._entries[index]
        if isinstance(entry, str):
            return decode(entry)
        if self._side is None or entry[3] < 0:
            raise IndexError(f"expected output {index} was stored only as a digest")
        text = read_range(self._side, entry[3], entry[1])
        if digest(text) != entry[0]:
            raise DatasetError(f"{self._side}: expected output {index} does not match its digest")
        return decode(text)

    def is_floats(self, index: int) -> bool:
        """EvalPlus's ``is_floats`` of the answer (recorded when the ground truth was computed)."""
        return index in self._floats

    def text(self, index: int) -> str | None:
        """The answer's wire text, or None when only its digest is kept."""
        entry = self._entries[index]
        return entry if isinstance(entry, str) else None

    def same(self, index: int, text: str | None, text_digest: str | None = None) -> bool:
        """True when the candidate's wire text (or its digest) equals the reference's."""
        entry = self._entries[index]
        if isinstance(entry, str):
            if text is not None:
                return text == entry
            return text_digest == digest(entry)
        if text is not None and len(text) != entry[1]:
            return False
        return (text_digest or digest(text or "")) == entry[0]

    def characters(self) -> int:
        """Total length of the answers' wire text (what an attempt must encode and send)."""
        return sum(len(e) if isinstance(e, str) else e[1] for e in self._entries)

    def head(self, index: int) -> str:
        """A short prefix of the answer's wire text (for reports)."""
        entry = self._entries[index]
        return entry[:200] if isinstance(entry, str) else entry[2]


class Inputs(Sequence):
    """A task's argument lists kept marshalled (compact; each access is a fresh copy).

    ``blobs`` go to the sandbox's child as they are, so inputs are never re-encoded.
    """

    __slots__ = ("blobs",)

    def __init__(self, values: Sequence[Any]) -> None:
        self.blobs = [marshal.dumps(tuple(args)) for args in values]

    def __len__(self) -> int:
        return len(self.blobs)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [marshal.loads(blob) for blob in self.blobs[index]]
        return marshal.loads(self.blobs[index])

    def __repr__(self) -> str:
        return f"Inputs({len(self.blobs)})"
