"""Fixtures for the Cortex tests: real server processes on stdio or 127.0.0.1 HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from koderz.cortex import CortexConfig, open_memory_store
from koderz.cortex.client import CortexClient
from tests.support import cortex_processes
from tests.support.cortex_processes import HttpServer


@pytest.fixture
def server_env() -> dict[str, str]:
    """Environment for a server subprocess that can import this checkout's koderz."""
    return cortex_processes.server_env()


@pytest.fixture
def cortex_cfg(tmp_path: Path) -> CortexConfig:
    """The embedded MCP server (mode=embedded) on a file in tmp_path."""
    return CortexConfig(mode="embedded", db=str(tmp_path / "cortex.db"), timeout=20.0)


@pytest.fixture
async def store(cortex_cfg: CortexConfig) -> AsyncIterator[CortexClient]:
    """The default store: embedded server, one persistent session."""
    async with open_memory_store(cortex_cfg, "test-run") as opened:
        assert isinstance(opened, CortexClient)
        yield opened


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpServer]:
    """``python -m koderz.cortex serve --http`` on a free 127.0.0.1 port (its URL and token file)."""
    folder = tmp_path / "http-server"
    folder.mkdir()
    with cortex_processes.http_server(folder) as server:
        yield server
