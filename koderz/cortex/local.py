"""``LocalStore``: the ``MemoryStore`` on the SQLite file itself, in the run's own process (the default).

No server and no MCP SDK; the same ``MemoryDB`` as the server, so ``serve --db`` on the file sees
every record, also while runs write (docs/cortex.md: many processes, one store). ``remember``
queues the record and returns at once; a background task stores the queue, one transaction a
batch, and ``MAX_PENDING`` queued records make ``remember`` wait. Reads have their own connection
and thread; a read that a queued record could answer stores the queue first. Faults never reach
the caller: a write SQLite refuses counts in ``lost_writes`` (one warning), a failed batch is
stored again record by record unless the file was locked, a failed read returns nothing.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from koderz.cortex.db import MemoryDB
from koderz.cortex.sanitize import MAX_SUMMARY, clean_text, sanitize
from koderz.cortex.store import MemoryRecord
from koderz.errors import MemoryStoreError

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
MAX_PENDING = 2_000  # queued records before remember() waits for the writer (bounded memory)


class LocalStore:
    """``MemoryStore`` writing ``MemoryDB`` on one thread and reading it on another (SQLite releases the GIL)."""

    keeps = True

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.lost_writes = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cortex-local")
        self._read_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cortex-local-read")
        self._db: MemoryDB | None = None
        self._reader: MemoryDB | None = None
        self._warned = False
        self._pending: list[MemoryRecord] = []
        self._in_flight: list[MemoryRecord] = []  # the batch being stored now
        self._wake = asyncio.Event()
        self._store_lock = asyncio.Lock()
        self._writer: asyncio.Task[None] | None = None

    @property
    def storing(self) -> int:
        """How many records the writer is storing right now (taken from the queue, not yet stored)."""
        return len(self._in_flight)

    async def _run(self, fn: Callable[[MemoryDB], _T]) -> _T:
        db = self._db
        if db is None:
            raise MemoryStoreError(f"cortex store {self.path} is not open")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, db)

    async def connect(self) -> None:
        """Open (or create) the file; ``MemoryStoreError`` naming the path if SQLite cannot."""
        loop = asyncio.get_running_loop()
        try:
            self._db = await loop.run_in_executor(self._pool, lambda: MemoryDB(self.path, self.timeout))
            self._reader = await loop.run_in_executor(
                self._read_pool, lambda: MemoryDB(self.path, self.timeout, reader=True)
            )
        except Exception as exc:  # noqa: BLE001 - any failure to open is one line
            if self._db is not None:
                self._db.close()
                self._db = None
            raise MemoryStoreError(f"cortex store {str(self.path)!r} cannot be opened: {exc}") from None
        self._writer = asyncio.create_task(self._write_behind(), name="cortex-local-writer")

    async def aclose(self) -> None:
        """Store the queued records, then close the file."""
        await self.flush()
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None
        await self.flush()  # anything queued while the writer stopped
        loop = asyncio.get_running_loop()
        reader, self._reader = self._reader, None
        if reader is not None:
            await loop.run_in_executor(self._read_pool, reader.close)
        db, self._db = self._db, None
        if db is not None:
            await loop.run_in_executor(self._pool, db.close)
        self._pool.shutdown(wait=False)
        self._read_pool.shutdown(wait=False)

    # -- writing --------------------------------------------------------------------

    def _refused(self, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("cortex: a write was not stored in %s (%s); later writes go on", self.path, exc)

    async def _store(self, records: list[MemoryRecord]) -> list[str]:
        """Store sanitized records in one transaction, else (not for a lock) record by record. Never raises."""
        if self._db is None:  # never opened: the run already said it goes on without memory
            self.lost_writes += len(records)
            return []
        rows = [asdict(r) for r in records]
        try:
            return [str(i) for i in await self._run(lambda db: db.remember_many(rows))]
        except Exception as exc:  # noqa: BLE001 - a refused write costs that write, not the store
            if len(records) > 1 and not isinstance(exc, sqlite3.OperationalError):
                return [i for r in records for i in await self._store([r])]
            self.lost_writes += len(records)
            self._refused(exc)
            return []

    async def _write(self, fn: Callable[[MemoryDB], _T]) -> _T | None:
        if self._db is None:
            self.lost_writes += 1
            return None
        try:
            return await self._run(fn)
        except Exception as exc:  # noqa: BLE001 - a refused write costs that write, not the store
            self.lost_writes += 1
            self._refused(exc)
            return None

    async def _write_behind(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Store every queued record now."""
        async with self._store_lock:
            while self._pending:
                batch, self._pending = self._pending[:MAX_PENDING], self._pending[MAX_PENDING:]
                self._in_flight = batch
                try:
                    await self._store(batch)
                finally:
                    self._in_flight = []

    async def _read(
        self, what: str, fn: Callable[[MemoryDB], list[dict[str, Any]]], tags: list[str] | None, category: str | None
    ) -> list[dict[str, Any]]:
        if self.could_answer(tags, category):
            await self.flush()  # a run reads its own writes (and waits for no others)
        reader = self._reader
        if reader is None:  # never opened: the run already said it goes on without memory
            return []
        try:
            return await asyncio.get_running_loop().run_in_executor(self._read_pool, fn, reader)
        except Exception as exc:  # noqa: BLE001 - a failed read is an empty answer
            logger.warning("cortex: %s failed on %s: %s", what, self.path, exc)
            return []

    def could_answer(self, tags: list[str] | None, category: str | None) -> bool:
        """Could a record queued or being stored answer a read with these filters? (Such a read flushes first.)"""
        wanted = set(tags or ())
        queued = [*self._in_flight, *self._pending]
        return any(wanted <= set(r.tags) and category in (None, r.category) for r in queued)

    # -- MemoryStore ----------------------------------------------------------------

    async def remember(self, record: MemoryRecord) -> str | None:
        """Queue one memory (stored in the background); always ``None``."""
        self._pending.append(sanitize(record))
        self._wake.set()
        if len(self._pending) >= MAX_PENDING:
            await self.flush()
        return None

    async def remember_batch(self, records: list[MemoryRecord]) -> list[str]:
        """Store many memories now, in one transaction; their ids (empty if none could be stored)."""
        await self.flush()
        async with self._store_lock:
            return await self._store([sanitize(r) for r in records])

    async def recall(
        self,
        query: str = "",
        tags: list[str] | None = None,
        category: str | None = None,
        limit: int = 10,
        mode: str = "search",
    ) -> list[dict[str, Any]]:
        """Memories (full content) matching all ``tags`` and ``category``; ``mode`` search|recent|important."""
        return await self._read(
            "recall", lambda db: db.recall(query, tags, category, max(1, limit), mode), tags, category
        )

    async def export(self, tags: list[str] | None = None, category: str | None = None) -> list[dict[str, Any]]:
        """Every memory matching all ``tags`` and ``category``, oldest first."""
        return await self._read("export", lambda db: list(db.export(tags, category)), tags, category)

    async def start_session(self, context: str) -> str | None:
        text = clean_text(context, MAX_SUMMARY)
        started = await self._write(lambda db: db.start_session(text))
        return None if started is None else str(started["session_id"])

    async def end_session(self, session_id: str, summary: str) -> None:
        """Store the queued records, then close the session with ``summary``."""
        await self.flush()
        text = clean_text(summary, MAX_SUMMARY)
        if str(session_id).isdigit():
            await self._write(lambda db: db.end_session(int(session_id), text))

    async def stats(self) -> dict[str, Any]:
        """Counts of memories and sessions, database size (empty if the store is not open)."""
        await self.flush()
        try:
            return await self._run(lambda db: db.stats())
        except Exception:  # noqa: BLE001 - not open, or SQLite failed: no figures
            return {}
