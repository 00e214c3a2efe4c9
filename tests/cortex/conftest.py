"""Fixtures for the Cortex tests: real server processes on stdio or 127.0.0.1 HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from koderz.cortex import CortexConfig, open_memory_store
from koderz.cortex.client import CortexClient

REPO = Path(__file__).resolve().parents[2]


def _server_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


@pytest.fixture
def server_env() -> dict[str, str]:
    """Environment for a server subprocess that can import this checkout's koderz."""
    return _server_env()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
def http_server(tmp_path: Path) -> Iterator[str]:
    """``python -m koderz.cortex serve --http`` on a free 127.0.0.1 port; yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "koderz.cortex",
            "serve",
            "--db",
            str(tmp_path / "http.db"),
            "--http",
            f"127.0.0.1:{port}",
        ],
        env=_server_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "HTTP server exited early"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "HTTP server did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
