"""Start-up checks: keys first (no network), then each distinct endpoint and model once."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterable

from koderz.models.base import ModelClient


async def preflight_all(clients: Iterable[ModelClient]) -> int:
    """Preflight every distinct (endpoint, model) among ``clients`` once, concurrently.

    Roles that use the same model on the same server are checked by one request, not one
    each; built-in models (no endpoint) need no check. Raises the first failure in the
    order given (a ModelError); returns how many checks ran.
    """
    distinct: dict[Hashable, ModelClient] = {}
    for client in clients:
        if client.endpoint is not None:
            distinct.setdefault((client.endpoint.key, client.name), client)
    outcomes = await asyncio.gather(*(client.preflight() for client in distinct.values()), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return len(distinct)
