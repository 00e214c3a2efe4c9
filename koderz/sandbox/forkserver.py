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
import os
import sys
from typing import Any

from koderz.errors import SandboxError
from koderz.sandbox.zygote import Zygote


class ForkedProcess:
    """One attempt forked by the zygote; its exit code and the CPU time the zygote's ``wait4``
    counted for it (itself and every descendant it reaped) arrive over the control socket."""

    def __init__(
        self,
        server: ForkServer,
        pid: int,
        stdin: asyncio.StreamWriter,
        stderr: asyncio.StreamReader,
        exit_code: asyncio.Future[tuple[int, float]],
        transports: list[Any],
    ) -> None:
        self.pid, self.stdin, self.stderr = pid, stdin, stderr
        self._server = server
        self._exit = exit_code
        self._transports = transports

    @property
    def returncode(self) -> int | None:
        return self._exit.result()[0] if self._exit.done() and not self._exit.exception() else None

    @property
    def cpu_seconds(self) -> float | None:
        """CPU time of the attempt and the descendants it reaped, once the zygote has reaped it."""
        return self._exit.result()[1] if self._exit.done() and not self._exit.exception() else None

    async def wait(self) -> int:
        """The exit code; SandboxError when the fork server died before reporting it."""
        code, _ = await asyncio.shield(self._exit)
        return code

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


class ForkServer(Zygote):
    """The attempts' zygote (``child.zygote``) bound to one event loop."""

    name = "sandbox fork server"

    def __init__(self, source: str, env: dict[str, str]) -> None:
        super().__init__([sys.executable, "-I", "-S", "-B", "-c", source, "zygote"], env)

    def exit_value(self, fields: list[bytes]) -> tuple[int, float]:
        """An attempt's exit code and the CPU seconds ``wait4`` counted for it."""
        return int(fields[0]), float(fields[1])

    async def spawn(self, results_fd: int) -> ForkedProcess:
        """Fork one attempt writing its results to ``results_fd`` (the caller keeps and closes
        its copy); its job is written to the returned process's ``stdin``."""
        loop = asyncio.get_running_loop()
        job_r, job_w = os.pipe()
        out_r, out_w = os.pipe()
        try:
            pid = await self.fork([job_r, results_fd, out_w])
        except BaseException:
            for fd in (job_w, out_r):
                os.close(fd)
            raise
        finally:
            for fd in (job_r, out_w):
                os.close(fd)
        if pid < 0:
            for fd in (job_w, out_r):
                os.close(fd)
            raise SandboxError(f"{self.name} could not fork")
        exit_code = self.exit_of(pid)
        stderr, t1 = await _read_stream(loop, out_r, 2**16)
        t2, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, os.fdopen(job_w, "wb", 0))
        stdin = asyncio.StreamWriter(t2, protocol, None, loop)
        return ForkedProcess(self, pid, stdin, stderr, exit_code, [t1, t2])


async def _read_stream(loop: asyncio.AbstractEventLoop, fd: int, limit: int) -> tuple[asyncio.StreamReader, Any]:
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(fd, "rb", 0)
    )
    return reader, transport
