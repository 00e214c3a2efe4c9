"""Parent side of the fork server (``child.zygote``): attempts without interpreter start-up.

A fresh ``python -I -S`` per attempt spends most of its CPU time starting up and
importing; the zygote does that once (as a trusted process with the scrubbed
environment) and forks each attempt, which then contains itself exactly as a fresh
process does. ``ForkedProcess`` offers the slice of ``asyncio.subprocess.Process`` the
sandbox uses (``stdin``/``stderr`` streams, ``pid``, ``wait``, ``returncode``); the results
pipe is the caller's (it goes to the attempt's judge). Only the zygote kills an attempt's
process group, and only before it reaps the attempt (so never a reused pid).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from typing import Any

from koderz.errors import SandboxError

log = logging.getLogger(__name__)


class ForkedProcess:
    """One attempt forked by the zygote; its exit code arrives over the control socket."""

    def __init__(
        self,
        server: ForkServer,
        pid: int,
        stdin: asyncio.StreamWriter,
        stderr: asyncio.StreamReader,
        exit_code: asyncio.Future[int],
        transports: list[Any],
    ) -> None:
        self.pid, self.stdin, self.stderr = pid, stdin, stderr
        self._server = server
        self._exit = exit_code
        self._transports = transports

    @property
    def returncode(self) -> int | None:
        return self._exit.result() if self._exit.done() else None

    async def wait(self) -> int:
        """The exit code; SandboxError when the fork server died before reporting it."""
        return await asyncio.shield(self._exit)

    def close(self) -> None:
        """Close the parent's pipe ends (after the streams have been read)."""
        for transport in self._transports:
            transport.close()

    def terminate(self) -> None:
        """SIGTERM the attempt, through the zygote (only while it has not reaped it)."""
        if self.returncode is None:
            self._server.signal(self.pid, b"T")

    def kill_group(self) -> None:
        """SIGKILL the attempt's process group, through the zygote (only while it has not reaped it)."""
        if self.returncode is None:
            self._server.signal(self.pid, b"K")


class ForkServer:
    """A zygote process bound to one event loop."""

    def __init__(self, source: str, env: dict[str, str]) -> None:
        self._source, self._env = source, env
        self._sock: socket.socket | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._pending: dict[bytes, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._token = 0
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._popen = await asyncio.to_thread(
                subprocess.Popen,
                [sys.executable, "-I", "-S", "-B", "-c", self._source, "zygote", str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=self._env,
                pass_fds=[theirs.fileno()],
                cwd="/",
                start_new_session=True,
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @property
    def alive(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._sock is not None
        try:
            while message := await loop.sock_recv(self._sock, 256):
                kind, _, rest = message.partition(b" ")
                first, _, second = rest.partition(b" ")
                if kind == b"P" and first in self._pending:
                    self._pending.pop(first).set_result(int(second))
                elif kind == b"X":
                    future = self._exits.setdefault(int(first), loop.create_future())
                    if not future.done():
                        future.set_result(int(second))
        except OSError as exc:
            log.warning("sandbox fork server lost: %s", exc)
        finally:
            for future in list(self._pending.values()) + list(self._exits.values()):
                if not future.done():
                    future.set_exception(SandboxError("sandbox fork server exited"))

    async def spawn(self, results_fd: int) -> ForkedProcess:
        """Fork one attempt writing its results to ``results_fd`` (the caller keeps and closes
        its copy); its job is written to the returned process's ``stdin``."""
        sock = self._sock
        if not self.alive or sock is None:
            raise SandboxError("sandbox fork server is not running")
        loop = asyncio.get_running_loop()
        job_r, job_w = os.pipe()
        out_r, out_w = os.pipe()
        try:
            async with self._lock:
                self._token += 1
                token = b"%d" % self._token
                future = self._pending[token] = loop.create_future()
                fds = [job_r, results_fd, out_w]
                await loop.run_in_executor(None, lambda: socket.send_fds(sock, [token], fds))
            pid = await future
        finally:
            for fd in (job_r, out_w):
                os.close(fd)
        if pid < 0:
            for fd in (job_w, out_r):
                os.close(fd)
            raise SandboxError("sandbox fork server could not fork")
        exit_code = self._exits.setdefault(pid, loop.create_future())
        stderr, t1 = await _read_stream(loop, out_r, 2**16)
        t2, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, os.fdopen(job_w, "wb", 0))
        stdin = asyncio.StreamWriter(t2, protocol, None, loop)
        exit_code.add_done_callback(lambda _: self._exits.pop(pid, None))
        return ForkedProcess(self, pid, stdin, stderr, exit_code, [t1, t2])

    def signal(self, pid: int, kind: bytes) -> None:
        """Ask the zygote to SIGKILL attempt ``pid``'s group (``K``) or SIGTERM it (``T``), if it
        has not reaped ``pid`` yet."""
        if self._sock is not None and self.alive:
            try:
                self._sock.send(b"%s %d" % (kind, pid))
            except OSError as exc:
                log.warning("sandbox fork server: cannot ask it to kill attempt %d: %s", pid, exc)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        if self._reader is not None:
            self._reader.cancel()
        if self._popen is not None:
            self._popen.kill()
            self._popen.wait()


async def _read_stream(loop: asyncio.AbstractEventLoop, fd: int, limit: int) -> tuple[asyncio.StreamReader, Any]:
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(fd, "rb", 0)
    )
    return reader, transport
