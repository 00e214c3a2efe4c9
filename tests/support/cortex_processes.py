"""Cortex server processes for tests: started and stopped by the test, found by parentage only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def own_children(marker: str) -> list[int]:
    """Pids of this test process's own children whose command line contains ``marker``.

    Only processes this process started (its run's server, say) are ever found, so a
    test signals nothing another user or test owns.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile, or not readable
        if ppid == os.getpid() and marker in command:
            found.append(int(entry.name))
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env() -> dict[str, str]:
    """Environment for a subprocess that imports this checkout's koderz."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


@dataclass(frozen=True)
class HttpServer:
    url: str
    token_file: Path
    port: int

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()


@contextmanager
def http_server(folder: Path, *extra: str) -> Iterator[HttpServer]:
    """``python -m koderz.cortex serve --http`` on a free loopback port, its token file in ``folder``.

    Waits (60 s at most) until the port accepts; stops the process it started on exit.
    """
    port, token_file = free_port(), folder / "cortex.token"
    command = [sys.executable, "-m", "koderz.cortex", "serve", "--db", str(folder / "http.db")]
    command += ["--http", f"127.0.0.1:{port}", "--token-file", str(token_file), *extra]
    proc = subprocess.Popen(command, env=server_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"cortex server exited early: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("cortex HTTP server did not start within 60 s") from None
                time.sleep(0.1)
        yield HttpServer(f"http://127.0.0.1:{port}/mcp", token_file, port)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
