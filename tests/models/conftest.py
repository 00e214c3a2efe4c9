"""Fixtures: a scripted model server on 127.0.0.1, a client pool, a test API key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from koderz.models.registry import ClientPool
from tests.support.fakes.scripted_server import Script, ScriptedServer
from tests.support.model_configs import KEY_ENV


@pytest.fixture
async def start_server() -> AsyncIterator[Callable[..., Any]]:
    """``await start_server(script, models=..., latency=...)``; every server stops at teardown."""
    servers: list[ScriptedServer] = []

    async def start(script: Script, **options: Any) -> ScriptedServer:
        server = await ScriptedServer(script, **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def pool() -> AsyncIterator[ClientPool]:
    pool = ClientPool()
    yield pool
    await pool.aclose()


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test")
