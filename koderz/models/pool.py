"""What the models of one run share per server: one SDK client per endpoint key (pooled,
kept-alive connections) and one Endpoint (circuit breaker, concurrency limit) per server."""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from koderz.models.endpoint import Endpoint, EndpointSettings, Probe

C = TypeVar("C")
log = logging.getLogger(__name__)


class ClientPool:
    """Hands out one SDK client per endpoint key and one Endpoint per server; closes them at the end.

    Models on the same endpoint (same provider, URL and key) share one client and so one
    HTTP connection pool; models on the same server (provider and URL) share its breaker
    and its concurrency limit. Models never close pooled clients; the run closes the pool.
    """

    def __init__(self) -> None:
        self._clients: dict[Hashable, Any] = {}
        self._endpoints: dict[str, Endpoint] = {}

    def get(self, key: Hashable, factory: Callable[[], C]) -> C:
        """The client for ``key``, created by ``factory()`` on first use."""
        if key not in self._clients:
            log.debug("new SDK client for %s", key)
            self._clients[key] = factory()
        return self._clients[key]

    def endpoint(self, key: str, settings: EndpointSettings, probe: Probe) -> Endpoint:
        """The Endpoint for ``key`` (``"PROVIDER URL"``); a model joining an existing one
        tightens its settings (see ``EndpointSettings.shared_with``); the first model's probe is used."""
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            endpoint = self._endpoints[key] = Endpoint(key, settings, probe)
        else:
            endpoint.join(settings)
        return endpoint

    @property
    def endpoints(self) -> list[Endpoint]:
        """Every server the run's models call (for the runner: is one down?)."""
        return list(self._endpoints.values())

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        """Stop probing and close every client (both SDKs expose ``async close()``)."""
        for endpoint in self._endpoints.values():  # kept: their status stays readable
            await endpoint.aclose()
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()
