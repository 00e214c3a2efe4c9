"""A memory store that opens while the run already works.

Starting koderz's embedded server and its MCP handshake takes about a second. Problems
need not wait for it: writes made before the connection is up are kept in order and
sent as one batch when it is; reads (``recall``, ``export``, ``start_session``) wait for
the connection. If the embedded server cannot start (twice), the run goes on without
memory: one warning, and the unsent records count in ``lost_writes``.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable
from typing import Any

from koderz.cortex.store import MemoryRecord
from koderz.errors import MemoryStoreError

logger = logging.getLogger(__name__)


class DeferredStore:
    """``MemoryStore`` around a ``CortexClient`` built and connected in the background.

    ``build`` makes the client; it runs after the MCP SDK was imported in a thread, so
    neither the import nor the server start holds up the event loop or the run.
    """

    keeps = True

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self.client: Any = None
        self._pending: list[MemoryRecord] = []
        self._failed = 0
        self._connected = asyncio.create_task(self._connect(), name="cortex-connect")

    async def _connect(self) -> bool:
        await asyncio.to_thread(importlib.import_module, "koderz.cortex.client")
        self.client = self._build()
        for attempt in (1, 2):  # a server that died while starting gets one more start
            try:
                await self.client.connect()
                break
            except MemoryStoreError as exc:
                if attempt == 2:
                    logger.warning("cortex: the run goes on without memory: %s", exc)
                    self._failed = len(self._pending)
                    self._pending.clear()
                    return False
                logger.info("cortex: starting the server again after: %s", exc)
        pending, self._pending = self._pending, []
        if pending:
            await self.client.remember_batch(pending)
        return True

    async def ready(self) -> bool:
        """Wait for the connection; False when the store could not be opened."""
        return await asyncio.shield(self._connected)

    @property
    def lost_writes(self) -> int:
        return (self.client.lost_writes if self.client is not None else 0) + self._failed

    async def remember(self, record: MemoryRecord) -> str | None:
        if not self._connected.done():
            self._pending.append(record)
            return None
        if not self._connected.result():
            self._failed += 1
            return None
        return await self.client.remember(record)

    async def remember_batch(self, records: list[MemoryRecord]) -> list[str]:
        if not await self.ready():
            self._failed += len(records)
            return []
        return await self.client.remember_batch(records)

    async def recall(
        self,
        query: str = "",
        tags: list[str] | None = None,
        category: str | None = None,
        limit: int = 10,
        mode: str = "search",
    ) -> list[dict[str, Any]]:
        if not await self.ready():
            return []
        return await self.client.recall(query, tags, category, limit, mode)

    async def export(self, tags: list[str] | None = None, category: str | None = None) -> list[dict[str, Any]]:
        return await self.client.export(tags, category) if await self.ready() else []

    async def start_session(self, context: str) -> str | None:
        return await self.client.start_session(context) if await self.ready() else None

    async def end_session(self, session_id: str, summary: str) -> None:
        if await self.ready():
            await self.client.end_session(session_id, summary)

    async def aclose(self) -> None:
        if await self.ready():
            await self.client.aclose()
