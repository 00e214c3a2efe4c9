"""One shared SDK client per endpoint for the whole run (pooled, kept-alive connections)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

C = TypeVar("C")
log = logging.getLogger(__name__)


class ClientPool:
    """Hands out one SDK client per endpoint key and closes them all at the end of the run.

    Models on the same endpoint (same provider, URL and key) share one client and so one
    HTTP connection pool. Models never close pooled clients; the run closes the pool.
    """

    def __init__(self) -> None:
        self._clients: dict[Hashable, Any] = {}

    def get(self, key: Hashable, factory: Callable[[], C]) -> C:
        """The client for ``key``, created by ``factory()`` on first use."""
        if key not in self._clients:
            log.debug("new SDK client for %s", key)
            self._clients[key] = factory()
        return self._clients[key]

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        """Close every client (both SDKs expose ``async close()``)."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()
