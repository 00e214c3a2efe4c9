"""Parent side of the judge zygote (``judge_server``): register problems, fork one judge per attempt.

The attempt's results pipe goes from the child straight to its judge; the sandbox only
gets the judge's small JSON verdict and its exit code (with its CPU time, so that a
judge killed at its CPU budget is told apart from one that crashed).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from koderz.datasets.problem import Problem
from koderz.errors import SandboxError

log = logging.getLogger(__name__)

VERDICT_LIMIT = 256 * 1024  # bytes of one judge's verdict (a few KB in practice)
ROOT = str(Path(__file__).resolve().parents[2])  # the directory holding this koderz package
BOOT = f"import sys; sys.path.insert(0, {ROOT!r}); from koderz.sandbox.judge_server import main; main()"
JUDGE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


class JudgeProcess:
    """One attempt's judge: its verdict, its exit, and the pipe that tells it to stop."""

    def __init__(self, server: JudgeServer, pid: int, stop_fd: int, verdict: asyncio.Task[bytes]) -> None:
        self.server, self.pid, self.verdict = server, pid, verdict
        self._stop_fd: int | None = stop_fd
        self.exit = server.exit_of(pid)

    def stop(self) -> None:
        """The attempt is over: judge what the results pipe still holds, then answer."""
        if self._stop_fd is not None:
            os.close(self._stop_fd)
            self._stop_fd = None

    def kill(self) -> None:
        if not self.exit.done():
            self.server.kill(self.pid)

    def close(self) -> None:
        self.stop()
        self.verdict.cancel()


class JudgeServer:
    """The judge zygote bound to one event loop."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[bytes, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[tuple[int, float]]] = {}
        self._keys: dict[int, tuple[Problem, asyncio.Task[str]]] = {}
        self._tokens = itertools.count(1)
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._popen = await asyncio.to_thread(
                subprocess.Popen,
                [sys.executable, "-I", "-c", BOOT, str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=JUDGE_ENV,
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
                kind, *fields = message.split(b" ")
                if kind == b"P" and fields[0] in self._pending:
                    self._pending.pop(fields[0]).set_result(int(fields[1]))
                elif kind == b"X":
                    future = self.exit_of(int(fields[0]))
                    if not future.done():
                        future.set_result((int(fields[1]), float(fields[2])))
        except OSError as exc:
            log.warning("sandbox judge server lost: %s", exc)
        finally:
            futures: list[asyncio.Future[Any]] = [*self._pending.values(), *self._exits.values()]
            for future in futures:
                if not future.done():
                    future.set_exception(SandboxError("the sandbox's judge server exited"))

    def exit_of(self, pid: int) -> asyncio.Future[tuple[int, float]]:
        """Exit code and CPU seconds of judge ``pid`` (once the zygote has reaped it)."""
        future = self._exits.get(pid)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._exits[pid] = future
            future.add_done_callback(lambda _: self._exits.pop(pid, None))
        return future

    async def _send(self, message: bytes, fds: list[int]) -> None:
        sock = self._sock
        if not self.alive or sock is None:
            raise SandboxError("the sandbox's judge server is not running")
        await asyncio.get_running_loop().run_in_executor(None, lambda: socket.send_fds(sock, [message], fds))

    async def register(self, problem: Problem) -> str:
        """The zygote's key for ``problem`` (sent to it once per problem object)."""
        known = self._keys.get(id(problem))
        if known is None or known[0] is not problem:
            key = f"p{next(self._tokens)}"
            task = asyncio.get_running_loop().create_task(self._register(problem, key))
            known = self._keys[id(problem)] = (problem, task)
        return await asyncio.shield(known[1])

    async def _register(self, problem: Problem, key: str) -> str:
        payload = await asyncio.to_thread(pickle.dumps, problem, pickle.HIGHEST_PROTOCOL)
        read_fd, write_fd = os.pipe()
        try:
            async with self._lock:
                await self._send(b"R " + key.encode(), [read_fd])
        finally:
            os.close(read_fd)
        await asyncio.to_thread(_write_all, write_fd, payload)
        return key

    async def judge(self, key: str, request: dict[str, Any], results_fd: int) -> JudgeProcess:
        """Fork a judge reading ``results_fd`` (the caller keeps and closes its copy)."""
        loop = asyncio.get_running_loop()
        stop_r, stop_w = os.pipe()
        verdict_r, verdict_w = os.pipe()
        token = b"%d" % next(self._tokens)
        future = self._pending[token] = loop.create_future()
        try:
            message = b"J %s %s" % (token, json.dumps({**request, "key": key}).encode())
            async with self._lock:
                await self._send(message, [results_fd, stop_r, verdict_w])
            pid = await future
        except BaseException:
            self._pending.pop(token, None)
            for fd in (stop_w, verdict_r):
                os.close(fd)
            raise
        finally:
            os.close(stop_r)
            os.close(verdict_w)
        return JudgeProcess(self, pid, stop_w, loop.create_task(_read_verdict(verdict_r)))

    def kill(self, pid: int) -> None:
        """SIGKILL judge ``pid`` if the zygote has not reaped it yet."""
        if self._sock is not None and self.alive:
            try:
                socket.send_fds(self._sock, [b"K %d" % pid], [])
            except OSError as exc:
                log.warning("sandbox judge server: cannot ask it to kill judge %d: %s", pid, exc)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        if self._reader is not None:
            self._reader.cancel()
        if self._popen is not None:
            self._popen.kill()
            self._popen.wait()


def _write_all(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


async def _read_verdict(fd: int) -> bytes:
    """The judge's verdict: everything it writes to ``fd`` until it exits (bounded)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=VERDICT_LIMIT, loop=loop)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(fd, "rb", 0)
    )
    try:
        data = bytearray()
        while chunk := await reader.read(VERDICT_LIMIT):
            data += chunk
            if len(data) > VERDICT_LIMIT:
                raise SandboxError(f"a judge wrote a verdict of more than {VERDICT_LIMIT} bytes")
        return bytes(data)
    finally:
        transport.close()
