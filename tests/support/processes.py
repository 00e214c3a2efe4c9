"""``no_stray_processes``: a test whose commands leave a koderz process behind fails.

Before the test, the fixture notes the koderz-related processes; after it, any new one still
running after ``GRACE_SECONDS`` is a stray: the test fails naming them, and they are killed
(each is one this test started). A process is koderz-related when it descends from this pytest
process, carries this test's ``TAG_ENV`` in its environment (set for the test, so a process
that outlived its parent and was reparented is still recognised), or has ``koderz`` in its
command line and runs under pytest's temporary folder. Processes other sessions start beside
the tests (other koderz runs on the machine) match none of these.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

GRACE_SECONDS = 15.0
TICK = 0.1
TAG_ENV = "KODERZ_TEST_PROCESS_TAG"


@dataclass(frozen=True)
class Seen:
    """One process, told apart from a later one that reuses its pid."""

    pid: int
    started: float
    command: str


def related_processes(tag: str, under: Path) -> dict[tuple[int, float], Seen]:
    """The running (not zombie) koderz-related processes, by (pid, start time)."""
    me = psutil.Process()
    descendants = {child.pid for child in me.children(recursive=True)}
    found: dict[tuple[int, float], Seen] = {}
    for proc in psutil.process_iter(["pid", "cmdline", "create_time", "status"]):
        info = proc.info
        if info["pid"] == me.pid or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        command = " ".join(info["cmdline"] or [])
        if info["pid"] in descendants or _tagged(proc, tag) or ("koderz" in command and _runs_under(proc, under)):
            found[(info["pid"], info["create_time"])] = Seen(info["pid"], info["create_time"], command[:200])
    return found


def _tagged(proc: psutil.Process, tag: str) -> bool:
    try:
        return proc.environ().get(TAG_ENV) == tag
    except (psutil.Error, OSError):
        return False


def _runs_under(proc: psutil.Process, folder: Path) -> bool:
    try:
        return Path(proc.cwd()).is_relative_to(folder)
    except (psutil.Error, OSError):
        return False


def _running(seen: Seen) -> bool:
    try:
        proc = psutil.Process(seen.pid)
        return proc.create_time() == seen.started and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _kill(seen: Seen) -> None:
    """SIGKILL a stray this test started (checked again: same pid and start time)."""
    try:
        proc = psutil.Process(seen.pid)
        if proc.create_time() == seen.started:
            proc.kill()
    except psutil.Error:
        pass


@pytest.fixture
def no_stray_processes(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fail the test if a koderz process it started is still running after it (see the module)."""
    tag = uuid.uuid4().hex
    under = tmp_path_factory.getbasetemp().resolve()
    before = set(related_processes(tag, under))
    monkeypatch.setenv(TAG_ENV, tag)
    yield
    deadline = time.monotonic() + GRACE_SECONDS
    strays = [seen for key, seen in related_processes(tag, under).items() if key not in before]
    while strays and time.monotonic() < deadline:
        time.sleep(TICK)
        strays = [seen for seen in strays if _running(seen)]
    for seen in strays:
        _kill(seen)
    assert not strays, f"processes left running {GRACE_SECONDS:.0f} s after the test (killed now): " + "; ".join(
        f"{s.pid} {s.command}" for s in strays
    )
