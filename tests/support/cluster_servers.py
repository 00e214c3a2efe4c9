"""Servers for the scale-out tests, started in a session of their own and stopped by their pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent  # the venv's console scripts (mlflow, ray)
SLURM_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm-local.sh"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(what: str, ready: Callable[[], bool], proc: subprocess.Popen | None, log: Path, seconds: float) -> None:
    """Poll ``ready`` until true; fail when ``proc`` exits first or the deadline passes."""
    deadline = time.monotonic() + seconds
    while not ready():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what} exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {seconds:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@contextmanager
def serving(what: str, cmd: list[str], port: int, cwd: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` in a session of its own until its port answers; stop its process group after."""
    log = cwd / f"{what.replace(' ', '_')}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(what, lambda: port_open(port), proc, log, 180)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
