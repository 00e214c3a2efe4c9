"""SQLite storage behind every Cortex store (no MCP here): FTS5 search, WAL, nothing evicted.

Writes are ``BEGIN IMMEDIATE`` transactions with a busy timeout, so processes sharing the file
serialize them; ``consolidate`` (exact duplicates, when asked) is the only delete. Tag filters
mean "has every given tag"; a category filter is an exact match.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any


class Order(StrEnum):
    """How memories are listed: the three ``recall`` modes, and ``export``'s oldest first."""

    RELEVANCE = "search"  # keyword relevance (bm25); newest first without words
    NEWEST = "recent"
    IMPORTANCE = "important"
    OLDEST = "oldest"


_ORDER_BY = {
    Order.RELEVANCE: "bm25(memories_fts, 5.0, 1.0, 2.0), m.id DESC",
    Order.NEWEST: "m.id DESC",
    Order.IMPORTANCE: "m.importance DESC, m.id DESC",
    Order.OLDEST: "m.id",
}
TAG_PROBE = 1_000  # rows counted per tag to pick the rarest one of a filter

_SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    content TEXT NOT NULL,
    category TEXT NOT NULL,
    tags TEXT NOT NULL,
    importance REAL NOT NULL,
    metadata TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS memories_category ON memories(category);
CREATE INDEX IF NOT EXISTS memories_importance ON memories(importance);
CREATE TABLE IF NOT EXISTS memory_tags (
    tag TEXT NOT NULL,
    memory_id INTEGER NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
    PRIMARY KEY (tag, memory_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS memory_tags_memory ON memory_tags(memory_id);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(
    title, content, tags, content='memories', content_rowid='id'
);
CREATE TRIGGER IF NOT EXISTS memories_ai AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts(rowid, title, content, tags)
    VALUES (new.id, new.title, new.content, new.tags);
END;
CREATE TRIGGER IF NOT EXISTS memories_ad AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts(memories_fts, rowid, title, content, tags)
    VALUES ('delete', old.id, old.title, old.content, old.tags);
END;
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    context TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    summary TEXT
);
"""

_FIELDS = ("id", "title", "content", "category", "tags", "importance", "metadata", "created_at")
_COLUMNS = ", ".join(f"m.{name}" for name in _FIELDS)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _row_to_memory(row: tuple[Any, ...]) -> dict[str, Any]:
    memory = dict(zip(_FIELDS, row, strict=True))
    return memory | {k: json.loads(memory[k]) for k in ("tags", "metadata")} | {"created_at": _iso(row[-1])}


def _retry_locked(operation: Callable[[], object], timeout: float) -> None:
    """Run ``operation``, again after a short pause while SQLite says "locked", until ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            operation()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _row_id(cursor: sqlite3.Cursor) -> int:
    """The id of the row an INSERT just made."""
    if cursor.lastrowid is None:
        raise sqlite3.DatabaseError("INSERT made no row")
    return cursor.lastrowid


def fts_query(text: str) -> str:
    """Turn free text into an FTS5 query: every word must occur (quoted, so no syntax)."""
    return " ".join(f'"{word}"' for word in re.findall(r"\w+", text))


class MemoryDB:
    """The memory tables of one SQLite file, on one ``connection``. Not thread-safe: use from one thread."""

    def __init__(self, path: str | Path, busy_timeout: float = 30.0, *, reader: bool = False) -> None:
        """Open (or create) the file; a ``reader`` opens a file that has its tables, for queries only."""
        self.path = Path(path)
        if not reader:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
        )
        try:
            self.connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if reader:
                self.connection.execute("PRAGMA query_only = ON")
                return
            # Switching a new file to WAL takes an exclusive lock and may answer "locked" at
            # once, without the busy handler, while another process does the same.
            _retry_locked(lambda: self.connection.execute("PRAGMA journal_mode = WAL"), busy_timeout)
            self.connection.execute("PRAGMA synchronous = NORMAL")
            self.connection.execute("PRAGMA foreign_keys = ON")
            _retry_locked(self._create_schema, busy_timeout)
        except BaseException:
            self.connection.close()
            raise

    def _create_schema(self) -> None:
        try:
            self.connection.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
        except BaseException:
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.connection.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    # -- writes ---------------------------------------------------------------------

    def _insert(self, memory: dict[str, Any], now: float) -> int:
        tags = list(dict.fromkeys(memory["tags"]))
        cur = self.connection.execute(
            "INSERT INTO memories(title, content, category, tags, importance, metadata, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                memory["title"],
                memory["content"],
                memory["category"],
                json.dumps(tags),
                memory["importance"],
                json.dumps(memory["metadata"]),
                now,
            ),
        )
        mid = _row_id(cur)
        self.connection.executemany("INSERT INTO memory_tags(tag, memory_id) VALUES (?, ?)", [(t, mid) for t in tags])
        return mid

    def remember_many(self, memories: Iterable[dict[str, Any]]) -> list[int]:
        """Store memories in one transaction; return their ids in order."""
        now = time.time()
        with self._write():
            return [self._insert(m, now) for m in memories]

    def start_session(self, context: str) -> dict[str, Any]:
        now = time.time()
        with self._write() as conn:
            cur = conn.execute("INSERT INTO sessions(context, started_at) VALUES (?, ?)", (context, now))
        return {"session_id": _row_id(cur), "context": context, "started_at": _iso(now)}

    def end_session(self, session_id: int, summary: str) -> dict[str, Any] | None:
        """Close a session; ``None`` when it does not exist."""
        now = time.time()
        with self._write() as conn:
            row = conn.execute("SELECT started_at FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE sessions SET ended_at = ?, summary = ? WHERE id = ?", (now, summary, session_id))
            (added,) = conn.execute(
                "SELECT COUNT(*) FROM memories WHERE created_at >= ? AND created_at <= ?", (row[0], now)
            ).fetchone()
        return {
            "session_id": session_id,
            "started_at": _iso(row[0]),
            "ended_at": _iso(now),
            "summary": summary,
            "memories_added": added,
        }

    def consolidate(self, dry_run: bool) -> dict[str, Any]:
        """Merge exact duplicates (same title, content, category, tags, metadata)."""
        dup_sql = (
            "SELECT COUNT(*) - COUNT(DISTINCT title || x'1f' || content || x'1f' || category"
            " || x'1f' || tags || x'1f' || metadata) FROM memories"
        )
        if dry_run:
            (dups,) = self.connection.execute(dup_sql).fetchone()
            return {"dry_run": True, "duplicates": dups, "removed": 0}
        with self._write() as conn:
            cur = conn.execute(
                "DELETE FROM memories WHERE id NOT IN (SELECT MIN(id) FROM memories"
                " GROUP BY title, content, category, tags, metadata)"
            )
            removed = cur.rowcount
            conn.execute("INSERT INTO memories_fts(memories_fts) VALUES ('optimize')")
        self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        return {"dry_run": False, "duplicates": removed, "removed": removed}

    # -- reads ----------------------------------------------------------------------

    def _filters(self, tags: list[str] | None, category: str | None) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        args: list[Any] = []
        wanted = list(dict.fromkeys(tags or []))
        if wanted:
            # Drive the search from the rarest tag and look the others up by key, so a
            # recall by a rare tag (a spec's origin) costs the same in a large memory.
            driver, *others = sorted(wanted, key=self._tag_rows) if len(wanted) > 1 else wanted
            exists = " AND EXISTS (SELECT 1 FROM memory_tags o WHERE o.tag = ? AND o.memory_id = d.memory_id)"
            where.append(f"m.id IN (SELECT d.memory_id FROM memory_tags d WHERE d.tag = ?{exists * len(others)})")
            args += [driver, *others]
        if category:
            where.append("m.category = ?")
            args.append(category)
        return where, args

    def _tag_rows(self, tag: str) -> int:
        """How many memories have ``tag``, counted up to ``TAG_PROBE`` (enough to find the rarest)."""
        sql = "SELECT COUNT(*) FROM (SELECT 1 FROM memory_tags WHERE tag = ? LIMIT ?)"
        return int(self.connection.execute(sql, (tag, TAG_PROBE)).fetchone()[0])

    def page(
        self,
        order: Order,
        *,
        query: str = "",
        tags: list[str] | None = None,
        category: str | None = None,
        after: list[float] | None = None,
        limit: int = 10,
    ) -> list[tuple[dict[str, Any], list[float]]]:
        """Up to ``limit`` memories matching the filters in ``order``, each with its position key.

        ``after`` is the key of the last memory of the previous page (from this method): the
        page goes on after it (a keyset; for keyword relevance, an offset into the ranking).
        """
        where, args = self._filters(tags, category)
        match = fts_query(query) if order is Order.RELEVANCE else ""
        source = "memories m"
        if match:
            source = "memories_fts JOIN memories m ON m.id = memories_fts.rowid"
            where.insert(0, "memories_fts MATCH ?")
            args.insert(0, match)
        elif order is Order.RELEVANCE:
            order = Order.NEWEST  # no words: newest first
        offset = 0
        if after and order is Order.RELEVANCE:
            offset = int(after[0])
        elif after and order is Order.IMPORTANCE:
            where.append("(m.importance < ? OR (m.importance = ? AND m.id < ?))")
            args += [after[0], after[0], int(after[1])]
        elif after:
            where.append("m.id > ?" if order is Order.OLDEST else "m.id < ?")
            args.append(int(after[0]))
        sql = f"SELECT {_COLUMNS} FROM {source}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {_ORDER_BY[order]} LIMIT ? OFFSET ?"
        rows = self.connection.execute(sql, [*args, limit, offset]).fetchall()
        if order is Order.RELEVANCE:
            return [(_row_to_memory(r), [offset + i + 1]) for i, r in enumerate(rows)]
        if order is Order.IMPORTANCE:
            return [(_row_to_memory(r), [r[5], r[0]]) for r in rows]
        return [(_row_to_memory(r), [r[0]]) for r in rows]

    def recall(
        self, query: str, tags: list[str] | None, category: str | None, limit: int, mode: str
    ) -> list[dict[str, Any]]:
        """Memories matching the filters, best first (bm25 / newest / most important); one page."""
        rows = self.page(Order(mode), query=query, tags=tags, category=category, limit=limit)
        return [memory for memory, _ in rows]

    def export(self, tags: list[str] | None, category: str | None) -> Iterator[dict[str, Any]]:
        """Every memory matching the filters, oldest first, read a page at a time."""
        after: list[float] | None = None
        while rows := self.page(Order.OLDEST, tags=tags, category=category, after=after, limit=100):
            yield from (memory for memory, _ in rows)
            after = rows[-1][1]

    def stats(self) -> dict[str, Any]:
        conn = self.connection
        (total,) = conn.execute("SELECT COUNT(*) FROM memories").fetchone()
        by_category = dict(conn.execute("SELECT category, COUNT(*) FROM memories GROUP BY category"))
        (sessions, open_sessions) = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(ended_at IS NULL), 0) FROM sessions"
        ).fetchone()
        size = sum(os.path.getsize(p) for p in (self.path, Path(f"{self.path}-wal")) if os.path.exists(p))
        return {
            "total_memories": total,
            "by_category": by_category,
            "sessions": sessions,
            "open_sessions": open_sessions,
            "db_path": str(self.path.resolve()),
            "db_bytes": size,
        }
