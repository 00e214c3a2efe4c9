"""The Cortex MCP server: ``python -m koderz.cortex serve --db PATH [--http [HOST:]PORT]`` (docs/cortex.md).

Every tool answers structured content under an output schema, with a one-line text summary.
Listings page in MCP's shape (``paging.py``); a value over the store's limits (``limits.py``,
also in the input schemas) is refused with a tool error naming it, never cut. Writes run on
one thread, so concurrent calls are serialized. Over HTTP every request needs the bearer
token and a loopback (or ``--allow-host``) ``Host`` (``auth.py``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from koderz.cortex.auth import StaticTokenVerifier, default_token_file, host_security, server_token
from koderz.cortex.db import MemoryDB, Order
from koderz.cortex.limits import (
    MAX_BATCH,
    MAX_CATEGORY,
    MAX_CONTENT,
    MAX_MEMORY_BYTES,
    MAX_PAGE_ITEMS,
    MAX_QUERY,
    MAX_SUMMARY,
    MAX_TAG,
    MAX_TAGS,
    MAX_TITLE,
    PAGE_BYTES,
    LimitError,
    check_memory,
)
from koderz.cortex.paging import CursorError, Page, decode_cursor, fill, fingerprint
from koderz.cortex.sanitize import escape

_T = TypeVar("_T")

IMPORTANCE_WORDS = {"low": 0.25, "normal": 0.5, "medium": 0.5, "high": 0.75, "critical": 1.0}
MAX_CATEGORIES_LISTED = 100

Title = Annotated[str, Field(max_length=MAX_TITLE)]
Content = Annotated[str, Field(max_length=MAX_CONTENT, description=f"at most {MAX_MEMORY_BYTES} bytes as JSON")]
Category = Annotated[str, Field(max_length=MAX_CATEGORY)]
Tags = Annotated[list[Annotated[str, Field(max_length=MAX_TAG)]], Field(max_length=MAX_TAGS)]
Summary = Annotated[str, Field(max_length=MAX_SUMMARY)]
PageLimit = Annotated[
    int, Field(ge=1, le=MAX_PAGE_ITEMS, description=f"memories in this reply (and {PAGE_BYTES} bytes)")
]
Cursor = Annotated[str | None, Field(max_length=1_000, description="nextCursor of the previous reply")]

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
DELETE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)


class MemoryIn(BaseModel):
    """One memory to store."""

    title: Title
    content: Content
    category: Category = "custom"
    tags: Tags = Field(default_factory=list)
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


class ExportResult(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    memories: list[Memory]
    count: int
    next_cursor: str | None = Field(default=None, alias="nextCursor")


class RememberResult(BaseModel):
    id: int


class RememberBatchResult(BaseModel):
    ids: list[int]
    count: int


class RecallResult(ExportResult):
    mode: str


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
    categories: int
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


def _escaped(value: Any) -> Any:
    """Metadata with its strings made valid UTF-8 (nothing cut)."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {escape(str(k)): _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def _row(memory: MemoryIn) -> dict[str, Any]:
    """The row to store: importance checked, text made valid UTF-8, the whole within the limits."""
    row = {
        "title": escape(memory.title),
        "content": escape(memory.content),
        "category": escape(memory.category),
        "tags": [escape(tag) for tag in memory.tags],
        "importance": _importance(memory.importance),
        "metadata": _escaped(memory.metadata),
    }
    try:
        check_memory(row)
    except LimitError as exc:
        raise ToolError(str(exc)) from None
    return row


def _reply(data: BaseModel | dict[str, Any], summary: str) -> CallToolResult:
    """The result once, as structured content, with a one-line text summary."""
    structured = data.model_dump(mode="json", by_alias=True) if isinstance(data, BaseModel) else data
    return CallToolResult(content=[TextContent(text=summary)], structured_content=structured)


class _Worker:
    """Writes on one thread; reads on a connection of their own on the event loop's thread: a page
    is one indexed query of microseconds, less than a hand-off to a thread (WAL: reads never wait)."""

    def __init__(self, db_path: Path) -> None:
        self._db_path = db_path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cortex-db")
        self._dbs: list[MemoryDB] = []  # the writer's, the reader's

    async def open(self) -> None:
        writer = await asyncio.get_running_loop().run_in_executor(self._pool, MemoryDB, self._db_path)
        self._dbs = [writer, MemoryDB(self._db_path, reader=True)]

    def read(self, fn: Callable[[MemoryDB], _T]) -> _T:
        return fn(self._dbs[1])

    async def run(self, fn: Callable[[MemoryDB], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, self._dbs[0])

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for db in self._dbs:
            db.close()


def _paged(worker: _Worker, order: Order, listing: str, cursor: str | None, limit: int, **filters: Any) -> Page:
    try:
        after = decode_cursor(cursor, listing)
    except CursorError as exc:
        raise ToolError(str(exc)) from None
    return fill(worker.read(lambda db: db.page(order, after=after, limit=limit + 1, **filters)), limit, listing)


def _page_reply(page: Page, **fields: Any) -> CallToolResult:
    """``memories``, ``count``, ``fields``, and ``nextCursor`` while more match; the ids in the summary."""
    found, more = page.memories, f"; more: call again with cursor={page.next_cursor}" if page.next_cursor else ""
    data = {"memories": found, "count": len(found), **fields} | ({"nextCursor": page.next_cursor} if more else {})
    ids = ", ".join(str(m["id"]) for m in found[:10]) + (", ..." if len(found) > 10 else "")
    return _reply(data, f"{len(found)} memories (ids {ids}){more}" if found else f"no memories{more}")


def build_server(db_path: str | Path, token: str | None = None) -> MCPServer:
    """The Cortex tools over the SQLite file ``db_path`` (created if missing); ``token``: HTTP bearer auth."""
    worker = _Worker(Path(db_path))

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[None]:
        await worker.open()
        try:
            yield
        finally:
            worker.close()

    auth: dict[str, Any] = {}
    if token is not None:
        auth = {
            "token_verifier": StaticTokenVerifier(token),
            "auth": AuthSettings(
                issuer_url=AnyHttpUrl("http://127.0.0.1"), resource_server_url=None, required_scopes=[]
            ),
        }
    server = MCPServer(
        "koderz-cortex",
        instructions="Experiment memory: remember, recall, export_memories (paged: pass nextCursor back), sessions.",
        log_level="WARNING",
        lifespan=lifespan,
        **auth,
    )

    @server.tool(annotations=WRITE)
    async def remember(
        title: Title,
        content: Content,
        category: Category = "custom",
        tags: Tags | None = None,
        importance: float | str = 0.5,
        metadata: dict[str, Any] | None = None,
    ) -> Annotated[CallToolResult, RememberResult]:
        """Store one memory; returns its id. A value over a limit is refused, never cut."""
        memory = MemoryIn(
            title=title,
            content=content,
            category=category,
            tags=tags or [],
            importance=importance,
            metadata=metadata or {},
        )
        row = _row(memory)
        (mid,) = await worker.run(lambda db: db.remember_many([row]))
        return _reply(RememberResult(id=mid), f"stored memory {mid}")

    @server.tool(annotations=WRITE)
    async def remember_batch(
        memories: Annotated[list[MemoryIn], Field(min_length=1, max_length=MAX_BATCH)],
    ) -> Annotated[CallToolResult, RememberBatchResult]:
        """Store many memories in one transaction; returns their ids in order (none stored if one is refused)."""
        rows = []
        for i, memory in enumerate(memories):
            try:
                rows.append(_row(memory))
            except ToolError as exc:
                raise ToolError(f"memories[{i}]: {exc}") from None
        ids = await worker.run(lambda db: db.remember_many(rows))
        return _reply(RememberBatchResult(ids=ids, count=len(ids)), f"stored {len(ids)} memories")

    @server.tool(annotations=READ)
    async def recall(
        query: Annotated[str, Field(max_length=MAX_QUERY)] = "",
        tags: Tags | None = None,
        category: Category | None = None,
        limit: PageLimit = 10,
        mode: Literal["search", "recent", "important"] = "search",
        cursor: Cursor = None,
    ) -> Annotated[CallToolResult, RecallResult]:
        """Memories with full content matching every given tag and the category, one page.

        mode=search ranks by keyword relevance (every word must occur; an empty query
        lists newest first), recent lists newest first, important by importance. A
        reply holds at most ``limit`` memories and 512 KiB; ``nextCursor`` continues.
        """
        listing = fingerprint("recall", query, sorted(tags or []), category, mode)
        page = _paged(worker, Order(mode), listing, cursor, limit, query=query, tags=tags, category=category)
        return _page_reply(page, mode=mode)

    @server.tool(annotations=READ)
    async def export_memories(
        tags: Tags | None = None,
        category: Category | None = None,
        limit: PageLimit = MAX_PAGE_ITEMS,
        cursor: Cursor = None,
    ) -> Annotated[CallToolResult, ExportResult]:
        """Every memory matching every given tag and the category, oldest first, one page at a time."""
        listing = fingerprint("export_memories", sorted(tags or []), category)
        return _page_reply(_paged(worker, Order.OLDEST, listing, cursor, limit, tags=tags, category=category))

    @server.tool(annotations=WRITE)
    async def start_session(context: Summary = "") -> Annotated[CallToolResult, SessionStarted]:
        """Open a session; returns its id."""
        started = SessionStarted(**await worker.run(lambda db: db.start_session(escape(context))))
        return _reply(started, f"session {started.session_id} started")

    @server.tool(annotations=WRITE)
    async def end_session(session_id: int, summary: Summary = "") -> Annotated[CallToolResult, SessionEnded]:
        """Close a session with a summary."""
        ended = await worker.run(lambda db: db.end_session(session_id, escape(summary)))
        if ended is None:
            raise ToolError(f"no session with id {session_id}")
        return _reply(SessionEnded(**ended), f"session {session_id} ended")

    @server.tool(annotations=READ)
    async def memory_stats() -> Annotated[CallToolResult, Stats]:
        """Counts of memories (by category, the largest 100) and sessions, database size, server pid."""
        stats = await worker.run(lambda db: db.stats())
        by_category = dict(sorted(stats["by_category"].items(), key=lambda kv: -kv[1])[:MAX_CATEGORIES_LISTED])
        result = Stats(
            **{**stats, "by_category": by_category}, categories=len(stats["by_category"]), server_pid=os.getpid()
        )
        return _reply(result, f"{result.total_memories} memories, {result.sessions} sessions")

    @server.tool(annotations=DELETE)
    async def consolidate(dry_run: bool = False) -> Annotated[CallToolResult, ConsolidateResult]:
        """Merge exact duplicate memories (deletes all but the oldest of each; dry_run only counts them)."""
        result = ConsolidateResult(**await worker.run(lambda db: db.consolidate(dry_run)))
        return _reply(result, f"{result.duplicates} duplicates, {result.removed} removed")

    return server


def serve(
    db_path: str | Path,
    http: tuple[str, int] | None = None,
    *,
    token_file: Path | None = None,
    allowed_hosts: tuple[str, ...] = (),
) -> None:
    """Run the server on stdio, or on streamable HTTP at ``http=(host, port)`` (path ``/mcp``, bearer token)."""
    if http is None:
        build_server(db_path).run("stdio")
        return
    path = token_file or default_token_file()
    token = server_token(path)
    host, port = http
    print(
        f"cortex: serving {db_path} at http://{host}:{port}/mcp; clients send the bearer token in {path}",
        file=sys.stderr,
        flush=True,
    )
    build_server(db_path, token).run(
        "streamable-http", host=host, port=port, transport_security=host_security(list(allowed_hosts))
    )
