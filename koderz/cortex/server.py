"""The embedded Cortex MCP server: ``python -m koderz.cortex serve --db PATH [--http HOST:PORT]``.

Tools (names as in the original Cortex; every result is structured content with an
output schema, plus the same JSON as text for old clients):

- ``remember(title, content, category, tags, importance, metadata)`` -> ``{id}``
- ``remember_batch(memories: [..same fields..])`` -> ``{ids, count}`` (one transaction)
- ``recall(query, tags, category, limit, mode=search|recent|important)`` -> ``{memories, count, mode}``
- ``export_memories(tags, category)`` -> ``{memories, count}`` (all matching, oldest first)
- ``start_session(context)`` -> ``{session_id, context, started_at}``
- ``end_session(session_id, summary)`` -> ``{session_id, started_at, ended_at, summary, memories_added}``
- ``memory_stats()`` -> ``{total_memories, by_category, sessions, open_sessions, db_path, db_bytes, server_pid}``
- ``consolidate(dry_run)`` -> ``{dry_run, duplicates, removed}`` (merges exact duplicates only)

``importance`` is a number in [0, 1] or one of the original's words (low, normal,
medium, high, critical). Tags filter as "has all of them". All database work runs on
one dedicated thread, so concurrent calls are serialized and never lost.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from koderz.cortex.db import MemoryDB
from koderz.cortex.sanitize import MAX_SUMMARY, clean_text, sanitize
from koderz.cortex.store import MemoryRecord

_T = TypeVar("_T")

IMPORTANCE_WORDS = {"low": 0.25, "normal": 0.5, "medium": 0.5, "high": 0.75, "critical": 1.0}


class MemoryIn(BaseModel):
    """One memory to store."""

    title: str
    content: str
    category: str = "custom"
    tags: list[str] = Field(default_factory=list)
    importance: float | str = 0.5
    metadata: dict[str, Any] = Field(default_factory=dict)


class Memory(BaseModel):
    id: int
    title: str
    content: str
    category: str
    tags: list[str]
    importance: float
    metadata: dict[str, Any]
    created_at: str


class RememberResult(BaseModel):
    id: int


class RememberBatchResult(BaseModel):
    ids: list[int]
    count: int


class RecallResult(BaseModel):
    memories: list[Memory]
    count: int
    mode: str


class ExportResult(BaseModel):
    memories: list[Memory]
    count: int


class SessionStarted(BaseModel):
    session_id: int
    context: str
    started_at: str


class SessionEnded(BaseModel):
    session_id: int
    started_at: str
    ended_at: str
    summary: str
    memories_added: int


class Stats(BaseModel):
    total_memories: int
    by_category: dict[str, int]
    sessions: int
    open_sessions: int
    db_path: str
    db_bytes: int
    server_pid: int


class ConsolidateResult(BaseModel):
    dry_run: bool
    duplicates: int
    removed: int


def _importance(value: float | str) -> float:
    if isinstance(value, str):
        if value.lower() in IMPORTANCE_WORDS:
            return IMPORTANCE_WORDS[value.lower()]
        try:
            value = float(value)
        except ValueError:
            raise ToolError(
                f"importance {value!r} is not a number in [0, 1] or one of {sorted(IMPORTANCE_WORDS)}"
            ) from None
    if not 0.0 <= value <= 1.0:
        raise ToolError(f"importance {value!r} is outside [0, 1]")
    return float(value)


def _row(memory: MemoryIn) -> dict[str, Any]:
    """The row to store: importance checked, then every field sanitised (any client may send anything)."""
    importance = _importance(memory.importance)
    record = MemoryRecord(
        memory.title, memory.content, memory.category, tuple(memory.tags), importance, memory.metadata
    )
    return asdict(sanitize(record))


class _Worker:
    """Runs every ``MemoryDB`` call on one thread (opened lazily, closed at shutdown)."""

    def __init__(self, db_path: Path) -> None:
        self._db_path = db_path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cortex-db")
        self._db: MemoryDB | None = None

    def _open(self) -> MemoryDB:
        if self._db is None:
            self._db = MemoryDB(self._db_path)
        return self._db

    async def run(self, fn: Callable[[MemoryDB], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, lambda: fn(self._open()))

    async def open(self) -> None:
        await self.run(lambda db: None)

    def close(self) -> None:
        def _close() -> None:
            if self._db is not None:
                self._db.close()

        self._pool.submit(_close)
        self._pool.shutdown(wait=True)


def build_server(db_path: str | Path) -> MCPServer:
    """The Cortex tools over the SQLite file ``db_path`` (created if missing)."""
    worker = _Worker(Path(db_path))

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[None]:
        await worker.open()
        try:
            yield
        finally:
            worker.close()

    server = MCPServer(
        "koderz-cortex",
        instructions="Experiment memory: remember, recall, export_memories, sessions.",
        log_level="WARNING",
        lifespan=lifespan,
    )

    @server.tool()
    async def remember(
        title: str,
        content: str,
        category: str = "custom",
        tags: list[str] | None = None,
        importance: float | str = 0.5,
        metadata: dict[str, Any] | None = None,
    ) -> RememberResult:
        """Store one memory; returns its id."""
        row = _row(
            MemoryIn(
                title=title,
                content=content,
                category=category,
                tags=tags or [],
                importance=importance,
                metadata=metadata or {},
            )
        )
        (mid,) = await worker.run(lambda db: db.remember_many([row]))
        return RememberResult(id=mid)

    @server.tool()
    async def remember_batch(memories: list[MemoryIn]) -> RememberBatchResult:
        """Store many memories in one transaction; returns their ids in order."""
        rows = [_row(m) for m in memories]
        ids = await worker.run(lambda db: db.remember_many(rows))
        return RememberBatchResult(ids=ids, count=len(ids))

    @server.tool()
    async def recall(
        query: str = "",
        tags: list[str] | None = None,
        category: str | None = None,
        limit: Annotated[int, Field(ge=1)] = 10,
        mode: Literal["search", "recent", "important"] = "search",
    ) -> RecallResult:
        """Memories with full content matching every given tag and the category.

        mode=search ranks by keyword relevance (every word must occur; an empty query
        lists newest first), recent lists newest first, important by importance.
        """
        rows = await worker.run(lambda db: db.recall(query, tags, category, limit, mode))
        return RecallResult(memories=[Memory(**r) for r in rows], count=len(rows), mode=mode)

    @server.tool()
    async def export_memories(tags: list[str] | None = None, category: str | None = None) -> ExportResult:
        """Every memory matching every given tag and the category, oldest first."""
        rows = await worker.run(lambda db: db.export(tags, category))
        return ExportResult(memories=[Memory(**r) for r in rows], count=len(rows))

    @server.tool()
    async def start_session(context: str = "") -> SessionStarted:
        """Open a session; returns its id."""
        text = clean_text(context, MAX_SUMMARY)
        return SessionStarted(**await worker.run(lambda db: db.start_session(text)))

    @server.tool()
    async def end_session(session_id: int, summary: str = "") -> SessionEnded:
        """Close a session with a summary."""
        text = clean_text(summary, MAX_SUMMARY)
        ended = await worker.run(lambda db: db.end_session(session_id, text))
        if ended is None:
            raise ToolError(f"no session with id {session_id}")
        return SessionEnded(**ended)

    @server.tool()
    async def memory_stats() -> Stats:
        """Counts of memories (by category) and sessions, database size, server pid."""
        return Stats(**await worker.run(lambda db: db.stats()), server_pid=os.getpid())

    @server.tool()
    async def consolidate(dry_run: bool = False) -> ConsolidateResult:
        """Merge exact duplicate memories (dry_run only counts them)."""
        return ConsolidateResult(**await worker.run(lambda db: db.consolidate(dry_run)))

    return server


def serve(db_path: str | Path, http: tuple[str, int] | None = None) -> None:
    """Run the server on stdio, or on streamable HTTP at ``http=(host, port)`` (path ``/mcp``)."""
    server = build_server(db_path)
    if http is None:
        server.run("stdio")
    else:
        host, port = http
        server.run("streamable-http", host=host, port=port)
