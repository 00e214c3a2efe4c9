"""The run's side of the tracking server (``koderz.tracking.server``): a worker forked for this run.

``request`` asks the server of this code for a worker, starting the server when none answers
(its first act, once mlflow is imported, is to fork this run's worker), and never waits for
either: the run's settings and wakes wait in the pipe until the worker reads them. The
``ForkedWorker`` it returns is used like the ``Popen`` of a fresh worker: ``stdin``, ``poll``,
``wait``, ``send_signal``, ``kill``, ``returncode``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from koderz.tracking import server

LOST = -1  # the worker (or the server, before it forked one) ended without an exit code
START_SECONDS = 60.0  # for a starting server to import mlflow and fork the worker
MESSAGE_LIMIT = 64

_servers: list[subprocess.Popen[bytes]] = []  # started by this process (kept, not waited for)


class ForkedWorker:
    """A worker forked by the tracking server, seen through its connection and a pidfd."""

    def __init__(self, conn: socket.socket, stdin: IO[bytes]) -> None:
        self.stdin: IO[bytes] | None = stdin
        self.pid: int | None = None
        self.returncode: int | None = None
        self._conn: socket.socket | None = conn
        self._pidfd: int | None = None

    def _receive(self, timeout: float | None) -> bool:
        """Take one message from the server or the worker; False when none came within ``timeout``."""
        conn = self._conn
        if conn is None:
            return False
        readable, _, _ = select.select([conn], [], [], timeout)
        if not readable:
            return False
        try:
            message, fds, _, _ = socket.recv_fds(conn, MESSAGE_LIMIT, 1)
        except OSError:
            message, fds = b"", []
        kind, _, value = message.partition(b" ")
        if kind == b"P" and fds:
            self.pid, self._pidfd = int(value), fds[0]
        elif kind == b"X":
            self.returncode = int(value)
        else:
            for fd in fds:
                os.close(fd)
            if not message:  # the connection closed: whoever held it has ended
                self.returncode = LOST if self.returncode is None else self.returncode
        if self.returncode is not None:
            self._close()
        return True

    def poll(self) -> int | None:
        while self.returncode is None and self._receive(0):
            pass
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._receive(remaining) and deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(["tracking worker"], timeout or 0.0)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Signal the worker (once the server has said which process it is); never another process."""
        deadline = time.monotonic() + START_SECONDS
        while self._pidfd is None and self.returncode is None and time.monotonic() < deadline:
            self._receive(max(0.0, deadline - time.monotonic()))
        if self._pidfd is not None and self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signum)

    def kill(self) -> None:
        """SIGKILL the worker; one the server never named within ``START_SECONDS`` is given up
        (so a ``wait`` after this never hangs on a server that never answers)."""
        self.send_signal(signal.SIGKILL)
        if self._pidfd is None and self.returncode is None:
            self.returncode = LOST
            self._close()

    def _close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def request(env: dict[str, str]) -> ForkedWorker | None:
    """A worker for this run from the server of this code (started now if none answers); None
    when the server is off or cannot be reached or started."""
    path = server.socket_path()
    if path is None:
        return None
    pipe_r, pipe_w = os.pipe()
    try:
        conn = _ask(path, pipe_r, env) or _start(path, pipe_r, env)
    finally:
        os.close(pipe_r)
    if conn is None:
        os.close(pipe_w)
        return None
    return ForkedWorker(conn, os.fdopen(pipe_w, "wb"))


def _ask(path: os.PathLike[str], pipe_r: int, env: dict[str, str]) -> socket.socket | None:
    """The connection to a running server that took the request, or None."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.settimeout(5)
        conn.connect(os.fspath(path))
        socket.send_fds(conn, [server.WorkerRequest(os.getcwd(), env).message()], [pipe_r])
        conn.settimeout(None)
        return conn
    except OSError:
        conn.close()
        return None


def _start(path: os.PathLike[str], pipe_r: int, env: dict[str, str]) -> socket.socket | None:
    """Start the server with this run's request as its first (over an inherited socket pair)."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        command = [sys.executable, "-m", "koderz.tracking", "serve", os.fspath(path), str(pipe_r), str(theirs.fileno())]
        _servers.append(
            subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=[pipe_r, theirs.fileno()],
                start_new_session=True,
                env=env,
            )
        )
    except OSError:
        ours.close()
        return None
    finally:
        theirs.close()
    return ours


def stop_started_servers() -> None:
    """SIGTERM the servers this process started that still run (a test's teardown), and reap them."""
    while _servers:
        started = _servers.pop()
        if started.poll() is None:
            started.terminate()
            try:
                started.wait(timeout=30)
            except subprocess.TimeoutExpired:
                started.kill()
                started.wait()
