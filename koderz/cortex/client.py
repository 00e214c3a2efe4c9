"""``CortexClient``: the ``MemoryStore`` over MCP (stdio or streamable HTTP); see docs/cortex.md.

``connect()`` is the preflight: it lists the server's tools and picks the dialect they fit
(``dialects.py``), else ``MemoryStoreError`` in one line. Persistent: one session shared by
every caller; ephemeral: a server process and session per operation. After ``connect()``
nothing raises into the caller: a connection failure reconnects once and retries, then the
client gives up (one warning; writes count in ``lost_writes``, reads return empty); a write
the server refuses costs that write only. Records are sanitised before they are sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

# The MCP SDK imports these lazily on the first connect and the first tool result
# (output-schema validation). Importing them with this module, which koderz imports in
# a thread, keeps that work off the event loop.
import anyio._backends._asyncio
import anyio._core._subprocesses  # noqa: F401
import httpx2
import jsonschema  # noqa: F401
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT, Tool
from pydantic import ValidationError

from koderz.cortex.dialects import CortexTools, Dialect, choose
from koderz.cortex.limits import MAX_BATCH, MAX_BATCH_BYTES, json_bytes
from koderz.cortex.sanitize import MAX_SUMMARY, clean_text, sanitize
from koderz.cortex.store import MemoryRecord
from koderz.errors import MemoryStoreError

logger = logging.getLogger(__name__)
server_log = logging.getLogger("cortex-server")  # not under "koderz": the run's log file, not the console
_T = TypeVar("_T")


@dataclass(frozen=True)
class ServerTarget:
    """Where the MCP server is: a stdio command, or a streamable-HTTP URL."""

    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    url: str | None = None
    token: str | None = field(default=None, repr=False)

    @classmethod
    def embedded(cls, db: str | Path) -> ServerTarget:
        """koderz's own server on the SQLite file ``db``, run with this Python."""
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
        return cls(sys.executable, ("-m", "koderz.cortex", "serve", "--db", str(db)), {"PYTHONPATH": path})

    @property
    def label(self) -> str:
        return self.url if self.url else " ".join([self.command or "", *self.args])

    def transport(self) -> Any:
        """A fresh MCP transport (each stdio transport starts a new server process)."""
        if self.url:
            return _http(self.url, self.token)
        params = StdioServerParameters(command=self.command or "", args=list(self.args), env=self.env or None)
        return _stdio(params, self.label)


@asynccontextmanager
async def _http(url: str, token: str | None) -> AsyncIterator[Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = httpx2.Timeout(30.0, read=300.0)  # the SDK's defaults for the client it makes itself
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams


def _log_lines(fd: int, label: str) -> None:
    with os.fdopen(fd, "rb") as pipe:
        for line in pipe:
            server_log.info("%s: %s", label, line.decode(errors="replace").rstrip())


@asynccontextmanager
async def _stdio(params: StdioServerParameters, label: str) -> AsyncIterator[Any]:
    """``stdio_client`` with the server's stderr read into the log (a pipe and a thread)."""
    read_end, write_end = os.pipe()
    threading.Thread(target=_log_lines, args=(read_end, label), name="cortex-server-stderr", daemon=True).start()
    with os.fdopen(write_end, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as streams:
            yield streams


class _Refused(Exception):
    """The server answered with an error: retrying or reconnecting will not help."""


class _Unavailable(Exception):
    """The server cannot be reached any more (the client has given up)."""


def _leaf(exc: BaseException) -> BaseException:
    """The first leaf of an exception (group)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _reason(exc: BaseException) -> str:
    """The first leaf of an exception (group), as one line."""
    exc = _leaf(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _is_refusal(exc: Exception) -> bool:
    """A tool-level answer (bad arguments, schema mismatch), not a broken connection."""
    if isinstance(exc, MCPError):
        return exc.code not in (CONNECTION_CLOSED, REQUEST_TIMEOUT)
    return isinstance(exc, (ValidationError, RuntimeError))  # RuntimeError: result fails the output schema


def _structured(result: Any) -> dict[str, Any]:
    """The tool result as data: structured content, else JSON text, else ``{"text": ...}``."""
    if result.structured_content is not None:
        return dict(result.structured_content)
    text = "\n".join(getattr(block, "text", "") for block in result.content)
    try:
        data = json.loads(text)
    except ValueError:
        return {"text": text}
    return data if isinstance(data, dict) else {"result": data}


class _Connection:
    """One open MCP client session, owned by a background task.

    The SDK's transports hold anyio task groups that must be exited by the task that
    entered them; a dedicated owner task lets any caller task open, reconnect or close.
    """

    def __init__(self, target: ServerTarget, timeout: float) -> None:
        self._target = target
        self._timeout = timeout
        self._stop = asyncio.Event()
        self._ready: asyncio.Future[tuple[Client, dict[str, Tool]]] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None
        self.client: Client | None = None
        self.tools: dict[str, Tool] = {}

    async def open(self) -> None:
        self._task = asyncio.create_task(self._own(), name="cortex-connection")
        try:
            async with asyncio.timeout(self._timeout):
                self.client, self.tools = await asyncio.shield(self._ready)
        except BaseException:
            await self.close()
            raise

    async def _own(self) -> None:
        try:
            async with Client(self._target.transport(), read_timeout_seconds=self._timeout) as client:
                tools: dict[str, Tool] = {}
                cursor: str | None = None
                while True:  # tools/list pages too
                    listed = await client.list_tools(cursor=cursor)
                    tools |= {t.name: t for t in listed.tools}
                    cursor = listed.next_cursor
                    if not cursor:
                        break
                self._ready.set_result((client, tools))
                await self._stop.wait()
        except BaseException as exc:  # noqa: BLE001 - the owner task must never leak an exception
            if not self._ready.done():
                self._ready.set_exception(exc if isinstance(exc, Exception) else ConnectionError(_reason(exc)))
            else:
                logger.debug("cortex connection ended: %s", _reason(exc))

    async def close(self) -> None:
        self._stop.set()
        if self._task is None:
            return
        if not self._ready.done():
            self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        if self._ready.done() and not self._ready.cancelled():
            self._ready.exception()  # mark retrieved


class CortexClient:
    """``MemoryStore`` over MCP; use ``async with`` (or ``connect()``/``aclose()``)."""

    keeps = True

    def __init__(
        self,
        target: ServerTarget,
        *,
        persistent: bool = True,
        timeout: float = 30.0,
        write_buffer: int = 0,
        flush_interval: float = 1.0,
    ) -> None:
        self.target = target
        self.persistent = persistent
        self.timeout = timeout
        self.write_buffer = write_buffer
        self.flush_interval = flush_interval
        self.lost_writes = 0
        self._conn: _Connection | None = None
        self._generation = 0
        self._reconnect_lock = asyncio.Lock()
        self._dead = False
        self._warned_refusal = False
        self._buffer: list[MemoryRecord] = []
        self._flusher: asyncio.Task[None] | None = None
        self._connecting: asyncio.Task[bool] | None = None
        self.dialect: Dialect = CortexTools()

    # -- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> CortexClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def connect(self) -> None:
        """Preflight: reach the server and check its tools; ``MemoryStoreError`` (one line) if not."""
        conn = _Connection(self.target, self.timeout)
        try:
            await conn.open()
        except Exception as exc:  # noqa: BLE001 - any failure to connect is one line
            why = f"no answer within {self.timeout:g}s" if isinstance(exc, TimeoutError) else _reason(exc)
            if self.target.url and isinstance(_leaf(exc), MCPError):  # an HTTP error status (the SDK keeps no code)
                why += (
                    " (no bearer token was sent: set cortex.token_file or KODERZ_CORTEX_TOKEN)"
                    if self.target.token is None
                    else " (is the bearer token the server's?)"
                )
            raise MemoryStoreError(f"cortex server {self.target.label!r} unreachable: {why}") from None
        dialect, why = choose(conn.tools)
        if dialect is None:
            await conn.close()
            raise MemoryStoreError(
                f"cortex server {self.target.label!r} is no supported memory server ({why}); tools: {sorted(conn.tools)}"
            )
        self.dialect = dialect
        if self.persistent:
            self._conn = conn
        else:
            await conn.close()
        if self.write_buffer > 0:
            self._flusher = asyncio.create_task(self._flush_periodically(), name="cortex-flusher")

    def connect_in_background(self) -> None:
        """Connect in a task (a server that fails to start gets one more start); until then
        ``remember`` queues, reads wait. If it fails, the client goes on without memory."""
        self._connecting = asyncio.create_task(self._connect_twice(), name="cortex-connect")

    async def _connect_twice(self) -> bool:
        for attempt in (1, 2):
            try:
                await self.connect()
                break
            except MemoryStoreError as exc:
                if attempt == 2:
                    logger.warning("cortex: the run goes on without memory: %s", exc)
                    self._dead = True
                    return False
                logger.info("cortex: starting the server again after: %s", exc)
        await self.flush()  # what was written meanwhile, in order, in one batch
        return True

    async def ready(self) -> bool:
        """Wait for a background connection; False if it failed."""
        if self._connecting is None or self._connecting is asyncio.current_task():  # sending the queue
            return True
        return await asyncio.shield(self._connecting)

    async def aclose(self) -> None:
        """Flush buffered writes and close the session (stops an embedded server)."""
        await self.ready()
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        await self.flush()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    # -- calls ----------------------------------------------------------------------

    async def _invoke(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        _check_encodable(tool, arguments)
        try:
            if self._conn is not None and self._conn.client is not None:
                result = await self._conn.client.call_tool(tool, arguments)
            else:  # ephemeral
                async with asyncio.timeout(self.timeout):
                    async with Client(self.target.transport(), read_timeout_seconds=self.timeout) as client:
                        result = await client.call_tool(tool, arguments)
        except Exception as exc:
            if _is_refusal(exc):
                raise _Refused(_reason(exc)) from exc
            raise
        if result.is_error:
            raise _Refused(_structured(result).get("text", "tool error"))
        return _structured(result)

    async def _reconnect(self, generation: int) -> None:
        async with self._reconnect_lock:
            if self._dead:
                raise _Unavailable
            if generation != self._generation or not self.persistent:
                return
            logger.info("cortex: reconnecting to %s", self.target.label)
            if self._conn is not None:
                await self._conn.close()
            conn = _Connection(self.target, self.timeout)
            await conn.open()
            self._conn = conn
            self._generation += 1

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Call ``tool``; on a connection failure reconnect and retry once, then give up.

        Raises ``_Refused`` for a tool error and ``_Unavailable`` once the client gave up.
        """
        if not await self.ready() or self._dead:
            raise _Unavailable
        generation = self._generation
        try:
            return await self._invoke(tool, arguments)
        except _Refused:
            raise
        except Exception:  # noqa: BLE001 - reconnect and retry once
            pass
        try:
            await self._reconnect(generation)
            return await self._invoke(tool, arguments)
        except (_Refused, _Unavailable):
            raise
        except Exception as exc:  # noqa: BLE001 - reported by _give_up
            self._give_up(tool, exc)
        raise _Unavailable

    def _give_up(self, tool: str, failure: BaseException) -> None:
        if not self._dead:
            self._dead = True
            logger.warning(
                "cortex: server %s failed (%s on %s) after a reconnect; continuing without memory",
                self.target.label,
                _reason(failure),
                tool,
            )

    async def _write(self, what: str, operation: Callable[[Dialect], Awaitable[_T]], count: int) -> _T | None:
        """Run a write on the server's dialect; ``None`` and ``count`` lost writes if it fails."""
        try:
            await self.ready()  # the dialect is known
            return await operation(self.dialect)
        except _Unavailable:
            pass
        except _Refused as exc:
            if not self._warned_refusal:
                self._warned_refusal = True
                logger.warning("cortex: %s refused a write: %s", what, exc)
        self.lost_writes += count
        return None

    async def _read(self, what: str, operation: Callable[[Dialect], Awaitable[_T]], empty: _T) -> _T:
        """Run a read on the server's dialect after the buffered writes; ``empty`` if it fails."""
        await self.flush()
        try:
            await self.ready()
            return await operation(self.dialect)
        except _Unavailable:
            return empty
        except _Refused as exc:
            logger.warning("cortex: %s refused: %s", what, exc)
            return empty

    # -- MemoryStore ----------------------------------------------------------------

    async def remember(self, record: MemoryRecord) -> str | None:
        """Store one memory; its id, or ``None`` (buffered, or not stored)."""
        connecting = self._connecting is not None and not self._connecting.done()
        if self.write_buffer > 0 or connecting:
            self._buffer.append(record)
            if not connecting and len(self._buffer) >= self.write_buffer:
                await self.flush()
            return None
        return await self._remember_one(_arguments(record))

    async def _remember_one(self, row: dict[str, Any]) -> str | None:
        ids = await self._write("remember", lambda d: d.remember_batch(self.call, [row]), 1)
        return ids[0] if ids else None

    async def remember_batch(self, records: list[MemoryRecord]) -> list[str]:
        """Store many memories (in chunks of ``MAX_BATCH`` records and ``MAX_BATCH_BYTES``); the ids stored.

        A chunk the server refuses is sent again record by record, so only the records
        it refuses are lost (and counted).
        """
        ids: list[str] = []
        await self.ready()
        for chunk in _chunks([_arguments(r) for r in records]):
            try:
                ids += await self.dialect.remember_batch(self.call, chunk)
            except _Unavailable:
                self.lost_writes += len(chunk)
            except _Refused as exc:
                logger.info("cortex: remember_batch refused (%s); sending its %d records one by one", exc, len(chunk))
                ids += [mid for row in chunk if (mid := await self._remember_one(row))]
        return ids

    async def flush(self) -> None:
        """Send buffered ``remember`` records now."""
        while self._buffer:
            batch, self._buffer = self._buffer[:MAX_BATCH], self._buffer[MAX_BATCH:]
            await self.remember_batch(batch)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()

    async def recall(
        self,
        query: str = "",
        tags: list[str] | None = None,
        category: str | None = None,
        limit: int = 10,
        mode: str = "search",
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` memories (full content) matching all ``tags`` and ``category``; ``mode``
        search|recent|important (pages followed)."""
        return await self._read(
            "recall", lambda d: d.recall(self.call, query, list(tags or []), category, limit, mode), []
        )

    async def export(self, tags: list[str] | None = None, category: str | None = None) -> list[dict[str, Any]]:
        """Every memory matching all ``tags`` and ``category``, oldest first (every page)."""
        return await self._read("export", lambda d: d.export(self.call, list(tags or []), category), [])

    async def start_session(self, context: str) -> str | None:
        """Open a session; its id, or ``None`` if the server is unavailable."""
        text = clean_text(context, MAX_SUMMARY)
        return await self._read("start_session", lambda d: d.start_session(self.call, text), None)

    async def end_session(self, session_id: str, summary: str) -> None:
        """Close a session with its summary (counted as a write)."""
        await self.flush()
        text = clean_text(summary, MAX_SUMMARY)
        await self._write("end_session", lambda d: d.end_session(self.call, session_id, text), 1)

    async def stats(self) -> dict[str, Any]:
        """The server's counts (``memory_stats``; empty if unavailable)."""
        return await self._read("memory_stats", lambda d: d.stats(self.call), {})

    async def consolidate(self, dry_run: bool = True) -> dict[str, Any]:
        """The server's ``consolidate`` (empty if unavailable, or the server has none)."""
        if await self.ready() and not self.dialect.consolidates:
            logger.warning("cortex: %s cannot consolidate", self.dialect.name)
            return {}
        return await self._read("consolidate", lambda d: self.call("consolidate", {"dry_run": dry_run}), {})


def _chunks(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``rows`` in order, in chunks of at most ``MAX_BATCH`` rows and ``MAX_BATCH_BYTES`` of JSON."""
    chunks: list[list[dict[str, Any]]] = []
    size = 0
    for row in rows:
        weight = json_bytes(row) + 1
        if not chunks or len(chunks[-1]) >= MAX_BATCH or (chunks[-1] and size + weight > MAX_BATCH_BYTES):
            chunks.append([])
            size = 0
        chunks[-1].append(row)
        size += weight
    return chunks


def _arguments(record: MemoryRecord) -> dict[str, Any]:
    """The ``remember`` arguments of the sanitised record (valid UTF-8, bounded sizes)."""
    clean = sanitize(record)
    data = asdict(clean)
    data["tags"] = list(clean.tags)
    return data


def _check_encodable(tool: str, arguments: dict[str, Any]) -> None:
    """Refuse (``_Refused``) arguments that are not UTF-8 JSON before they reach the transport.

    A lone surrogate that slipped past ``sanitize`` would otherwise break the
    connection's writer and cost the whole store; refused, it costs one call.
    """
    try:
        json.dumps(arguments, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise _Refused(f"{tool} arguments are not UTF-8 JSON: {_reason(exc)}") from None
