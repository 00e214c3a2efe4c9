"""The parent side of a zygote: a trusted helper process that forks on request, on one event loop.

Both the fork server (``forkserver``: one process per attempt) and the judge server
(``judge_client``: one judge per attempt) are such a process, reached over a ``SOCK_SEQPACKET``
socket pair with ``koderz.framing`` messages. The zygote answers a fork request (``FORK`` or
``JUDGE``, its first field a token) with ``STARTED <token> <pid>`` (a negative pid when it could
not fork), within ``REPLY_SECONDS``, and reports each child it reaps with ``EXITED <pid> <exit
code> <cpu seconds>``; it signals a child only while it has not reaped it, so never a reused pid.
When the zygote dies or sends what is no message, every request and exit still awaited fails
with a ``SandboxError`` naming it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import subprocess
from typing import Any

from koderz.errors import SandboxError
from koderz.framing import PACKET_LIMIT, FrameError, Kind, Message, send

log = logging.getLogger(__name__)

REPLY_SECONDS = 60.0  # for the zygote to answer a fork request
PIPE_CAPACITY = 65536  # Linux's default pipe buffer: a program this short is written without waiting


class Zygote:
    """A zygote process bound to one event loop; subclasses say how it starts and what an exit holds."""

    name = "zygote"  # in errors and warnings, e.g. "sandbox fork server"

    def __init__(self, argv: list[str], env: dict[str, str], stdin: bytes = b"") -> None:
        """``stdin``: bytes written to the process's stdin before it is closed (a program read by a
        short bootstrap, so that ``ps`` shows the command, not the program's source)."""
        if len(stdin) >= PIPE_CAPACITY:
            raise ValueError(f"{self.name}: {len(stdin)} bytes of stdin do not fit a pipe's buffer")
        self._argv, self._env, self._stdin = argv, env, stdin
        self._sock: socket.socket | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[bytes, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[tuple[int, float]]] = {}
        self._tokens = itertools.count(1)
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._popen = await asyncio.to_thread(self._spawn, theirs.fileno())
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._reader = asyncio.get_running_loop().create_task(self._read())

    def _spawn(self, fd: int) -> subprocess.Popen[bytes]:
        popen = subprocess.Popen(
            [*self._argv, str(fd)],
            stdin=subprocess.PIPE if self._stdin else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=self._env,
            pass_fds=[fd],
            cwd="/",
            start_new_session=True,
        )
        if popen.stdin is not None:
            try:  # smaller than the pipe's buffer: the write never waits for the reader
                popen.stdin.write(self._stdin)
            except BrokenPipeError:
                pass  # it exited at once: the reader sees its socket close
            finally:
                popen.stdin.close()
        return popen

    @property
    def pid(self) -> int | None:
        """The zygote process's pid, once started (and until closed)."""
        return self._popen.pid if self._popen is not None else None

    @property
    def alive(self) -> bool:
        return self._reader is not None and not self._reader.done()

    def awaited(self) -> list[asyncio.Future[Any]]:
        """A subclass's futures that fail (``SandboxError``) when the zygote dies."""
        return []

    def on_message(self, message: Message) -> None:
        """Any other message from the zygote (ignored unless a subclass reads it)."""

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._sock is not None
        try:
            while data := await loop.sock_recv(self._sock, PACKET_LIMIT + 1):
                message = Message.decode(data)
                if message.kind is Kind.STARTED and message.fields[0] in self._pending:
                    self._pending[message.fields[0]].set_result(message.field(1, int))  # fork() pops it
                elif message.kind is Kind.EXITED:
                    future = self.exit_of(message.field(0, int))
                    if not future.done():
                        future.set_result((message.field(1, int), message.field(2, float)))
                else:
                    self.on_message(message)
        except (OSError, FrameError) as exc:
            log.warning("%s lost: %s", self.name, exc)
        finally:
            futures: list[asyncio.Future[Any]] = [*self._pending.values(), *self._exits.values(), *self.awaited()]
            for future in futures:
                if not future.done():
                    future.set_exception(SandboxError(f"{self.name} exited"))

    def exit_of(self, pid: int) -> asyncio.Future[tuple[int, float]]:
        """Child ``pid``'s exit code and CPU seconds, once the zygote has reaped it."""
        future = self._exits.get(pid)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._exits[pid] = future
            future.add_done_callback(lambda _: self._exits.pop(pid, None))
        return future

    async def fork(self, kind: Kind, fds: list[int], *fields: bytes) -> int:
        """Send the fork request ``kind <token> <fields...>`` with ``fds``; the child's pid (< 0: the
        zygote could not fork)."""
        sock = self._sock
        if not self.alive or sock is None:
            raise SandboxError(f"{self.name} is not running")
        loop = asyncio.get_running_loop()
        token = b"%d" % next(self._tokens)
        future = self._pending[token] = loop.create_future()
        try:
            await self._send(sock, Message(kind, token, *fields), fds)
            return await asyncio.wait_for(future, REPLY_SECONDS)
        except TimeoutError:
            raise SandboxError(f"{self.name} did not answer a request in {REPLY_SECONDS:.0f} s") from None
        finally:
            self._pending.pop(token, None)

    async def send(self, message: Message, fds: list[int]) -> None:
        """A message that forks nothing (it may pass file descriptors)."""
        sock = self._sock
        if not self.alive or sock is None:
            raise SandboxError(f"{self.name} is not running")
        await self._send(sock, message, fds)

    async def _send(self, sock: socket.socket, message: Message, fds: list[int]) -> None:
        """Send one message (with ``fds``) from the event loop: at once, or when the socket has room."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            while True:
                try:
                    send(sock, message, fds)
                    return
                except BlockingIOError:
                    writable = loop.create_future()
                    loop.add_writer(sock.fileno(), _resolve, writable)
                    try:
                        await writable
                    finally:
                        loop.remove_writer(sock.fileno())

    def signal(self, pid: int, kind: Kind) -> None:
        """Ask the zygote to signal child ``pid`` (``KILL`` or ``TERMINATE``) if not reaped yet."""
        if self._sock is not None and self.alive:
            try:
                send(self._sock, Message(kind, pid))
            except OSError as exc:
                log.warning("%s: cannot signal child %d: %s", self.name, pid, exc)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        if self._reader is not None:
            self._reader.cancel()
        if self._popen is not None:
            self._popen.kill()
            self._popen.wait()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
