"""Fixtures for sandbox tests: datasets, a sandbox with its own uid range, leak checks."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from koderz.datasets.loaders import load_dataset
from koderz.datasets.problem import Problem
from koderz.sandbox.sandbox import Sandbox, SandboxConfig

UID_BASE = 3_900_000 + (os.getpid() % 1000) * 64  # this session's attempts only


def attempt_pids(uid_base: int = UID_BASE, width: int = 64) -> list[int]:
    """Live processes whose real uid is one of the sandbox's slot uids (leftovers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
                if uid_base <= uid < uid_base + width:
                    found.append(int(entry.name))
                break
    return found


@pytest.fixture
def leftovers():
    """``leftovers()`` lists live processes running as one of this session's slot uids."""
    return attempt_pids


@pytest.fixture
def uid_base() -> int:
    return UID_BASE


@pytest.fixture(scope="session")
def humaneval() -> dict[str, Problem]:
    return {p.task_id: p for p in load_dataset("humaneval")}


@pytest.fixture(scope="session")
def humaneval_plus() -> dict[str, Problem]:
    return {p.task_id: p for p in load_dataset("humaneval_plus")}


@pytest.fixture(scope="session")
def mbpp_plus() -> dict[str, Problem]:
    return {p.task_id: p for p in load_dataset("mbpp_plus")}


@pytest.fixture
def sandbox():
    sandbox = Sandbox(SandboxConfig(uid_base=UID_BASE))
    yield sandbox
    sandbox.close()


@pytest.fixture
def fast_sandbox():
    """Short CPU limits so that attacks that spin end quickly."""
    sandbox = Sandbox(SandboxConfig(uid_base=UID_BASE, cpu_floor=1.0, cpu_factor=2.0, wall_factor=2.0, wall_slack=3.0))
    yield sandbox
    sandbox.close()


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the full isolation needs root")


@pytest.fixture
def listener():
    """A real TCP listener on the host's 127.0.0.1; yields (port, what each connection sent).
    A contained attempt must leave the list empty."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    accepted: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    accepted.append(conn.recv(100))
                except OSError:
                    accepted.append(b"")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(2)
    server.close()
