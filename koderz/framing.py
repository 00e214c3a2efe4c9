"""Typed messages between koderz and its helper processes, in one bounded format.

A ``Message`` is a ``Kind`` and the fields that kind carries (``FIELDS``); on the wire
``kind field field ...``, one space apart (only a kind's last field may hold spaces). One message
is one packet on a ``SOCK_SEQPACKET`` socket, with file descriptors (the fork server's and the
judge server's requests and reports), or one frame on a pipe: its length in 4 bytes, then the
message (a judge's verdict, the tracking worker's stdin). Every read is bounded in size (a
blocking frame read also in time): a packet or frame over its bound, a frame cut by end of
file, an unknown kind, a missing or unreadable field raises ``FrameError``, and the reader
fails; nothing malformed is read as a message.

Stdlib only: the fork server (``sandbox/child.py``, which runs without koderz) inlines this
file, so it must not use ``from __future__`` and reads its annotations as strings.
"""

import os
import select
import socket
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

HEADER = 4  # bytes of a frame's length
PACKET_LIMIT = 1 << 16  # bytes of one packet (a judge request holds its JSON)
FDS_LIMIT = 3  # file descriptors one request passes
FD_SIZE = 4  # bytes of one passed descriptor (a C int)
T = TypeVar("T")


class FrameError(Exception):
    """Bytes that are not one message within its bounds."""


class Kind(StrEnum):
    """What a message says (its fields, in order, after each name)."""

    FORK = "F"  # token (with an attempt's stdin, results and output pipes)
    JUDGE = "J"  # token (to the judge server) or job (to a judge), request JSON (with the results, stop, verdict pipes)
    REGISTER = "R"  # key (with a file holding the pickled problem)
    KILL = "K"  # pid or job: SIGKILL it (a forked attempt: its process group) while not reaped
    TERMINATE = "T"  # pid: SIGTERM it while not reaped
    STARTED = "P"  # token, pid or job (< 0: nothing could be forked)
    EXITED = "X"  # pid or job, exit code, CPU seconds
    LOADED = "L"  # module: the fork server preloaded it
    NOT_LOADED = "N"  # module, why
    PRELOADED = "M"  # threads: the fork server has tried every module
    JUDGED = "D"  # job, exit code, the job's CPU seconds, the judge's CPU seconds, keep (1: it takes another)
    VERDICT = "V"  # the judgement (JSON)
    SETTINGS = "S"  # the tracking worker's settings (JSON)
    PROBLEM_DONE = "W"  # the run finished a problem
    DISCARD = "d"  # the run never started: delete its MLflow run


FIELDS = {
    Kind.FORK: 1,
    Kind.JUDGE: 2,
    Kind.REGISTER: 1,
    Kind.KILL: 1,
    Kind.TERMINATE: 1,
    Kind.STARTED: 2,
    Kind.EXITED: 3,
    Kind.LOADED: 1,
    Kind.NOT_LOADED: 2,
    Kind.PRELOADED: 1,
    Kind.JUDGED: 5,
    Kind.VERDICT: 1,
    Kind.SETTINGS: 1,
    Kind.PROBLEM_DONE: 0,
    Kind.DISCARD: 0,
}


class Message:
    """A kind and its fields (bytes; ``str``, ``int`` and ``float`` fields are written as text)."""

    __slots__ = ("fields", "kind")

    def __init__(self, kind: Kind, *fields: "bytes | str | float") -> None:
        if len(fields) != FIELDS[kind]:
            raise ValueError(f"a {kind.name} message has {FIELDS[kind]} fields, not {len(fields)}")
        self.kind = kind
        self.fields = [f if isinstance(f, bytes) else str(f).encode("utf-8", "replace") for f in fields]
        if any(b" " in f for f in self.fields[:-1]):
            raise ValueError(f"a {kind.name} message's fields before the last hold a space")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and (self.kind, self.fields) == (other.kind, other.fields)

    def encode(self) -> bytes:
        return b" ".join([self.kind.encode(), *self.fields])

    @classmethod
    def decode(cls, data: bytes, limit: int = PACKET_LIMIT) -> "Message":
        """The message ``data`` holds (``FrameError`` if it is longer than ``limit`` or malformed)."""
        if len(data) > limit:
            raise FrameError(f"a message of more than {limit} bytes")
        word, space, rest = data.partition(b" ")
        try:
            kind = Kind(word.decode("ascii"))
        except ValueError:  # UnicodeDecodeError too
            raise FrameError(f"no message kind is {word[:20]!r}") from None
        count = FIELDS[kind]
        fields = rest.split(b" ", count - 1) if space else []
        if len(fields) != count:
            raise FrameError(f"a {kind.name} message with {len(fields)} fields instead of {count}")
        return cls(kind, *fields)

    def field(self, index: int, parse: "Callable[[bytes], T]") -> "T":
        """Field ``index`` read by ``parse`` (``int``, ``float``, ``bytes.decode``); ``FrameError`` if it does not parse."""
        try:
            return parse(self.fields[index])
        except ValueError:  # UnicodeDecodeError too
            raise FrameError(f"a {self.kind.name} message's field {index} does not parse") from None


def send(sock: socket.socket, message: Message, fds: "list[int] | None" = None) -> None:
    """One packet (with ``fds``) on a ``SOCK_SEQPACKET`` socket."""
    socket.send_fds(sock, [message.encode()], fds or [])


def receive(sock: socket.socket, max_fds: int = 0, flags: int = 0) -> "tuple[Message, list[int]] | None":
    """The next packet and the descriptors it passed (None: the other side closed the socket).
    A packet over ``PACKET_LIMIT`` or with descriptors beyond ``max_fds`` is a ``FrameError``
    (its descriptors closed)."""
    space = socket.CMSG_LEN(max_fds * FD_SIZE) if max_fds else 0
    data, ancillary, got, _ = sock.recvmsg(PACKET_LIMIT + 1, space, flags)  # socket.recv_fds drops flags
    fds = [
        fd
        for level, kind, payload in ancillary
        if (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
        for fd in memoryview(payload[: len(payload) - len(payload) % FD_SIZE]).cast("i")
    ]
    try:
        if got & socket.MSG_CTRUNC or len(fds) > max_fds:
            raise FrameError(f"a message passing more than {max_fds} file descriptors")
        return (Message.decode(data), fds) if data else None
    except FrameError:
        for fd in fds:
            os.close(fd)
        raise


def frame(message: Message) -> bytes:
    """``message`` as one frame on a pipe."""
    data = message.encode()
    return len(data).to_bytes(HEADER, "big") + data


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def frame_size(header: bytes, limit: int) -> int:
    size = int.from_bytes(header, "big")
    if size > limit:
        raise FrameError(f"a frame of {size} bytes (more than {limit})")
    return size


def read_frame(fd: int, limit: int, seconds: float) -> "Message | None":
    """The next frame on ``fd``, read within ``seconds`` (None: end of file before it); nothing
    after it is read. Cut, late, over ``limit`` or malformed: ``FrameError``."""
    deadline = time.monotonic() + seconds
    header = _read(fd, HEADER, deadline)
    if not header:
        return None
    body = _read(fd, frame_size(header, limit), deadline) if len(header) == HEADER else b""
    if len(header) < HEADER or len(body) < int.from_bytes(header, "big"):
        raise FrameError("a frame cut by end of file")
    return Message.decode(body, limit)


def _read(fd: int, count: int, deadline: float) -> bytes:
    """``count`` bytes of ``fd``, or fewer at end of file."""
    data = bytearray()
    while len(data) < count:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise FrameError("no whole frame in time")
        chunk = os.read(fd, count - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


async def read_frame_async(fd: int, limit: int) -> "Message | None":
    """``read_frame`` on the running event loop, which owns and closes ``fd`` (the caller bounds the wait)."""
    import asyncio

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(loop=loop)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(fd, "rb", 0)
    )
    header = b""
    try:
        header = await reader.readexactly(HEADER)
        return Message.decode(await reader.readexactly(frame_size(header, limit)), limit)
    except asyncio.IncompleteReadError as exc:
        if header or exc.partial:
            raise FrameError("a frame cut by end of file") from None
        return None
    finally:
        transport.close()
