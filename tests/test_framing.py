"""koderz.framing: typed messages round-trip; whatever is over a bound, cut, late or malformed
is a FrameError (never a message), on packets, blocking frames and frames on the event loop."""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import pytest

from koderz.errors import SandboxError
from koderz.framing import (
    FIELDS,
    HEADER,
    PACKET_LIMIT,
    FrameError,
    Kind,
    Message,
    frame,
    read_frame,
    read_frame_async,
    receive,
    send,
    write_all,
)
from koderz.sandbox.zygote import Zygote


def test_each_kind_round_trips_and_only_its_last_field_holds_spaces() -> None:
    for kind, count in FIELDS.items():
        fields = [f"f{i}" for i in range(count - 1)] + (["the last field, with spaces"] if count else [])
        message = Message(kind, *fields)
        assert Message.decode(message.encode()) == message
    with pytest.raises(ValueError, match="space"):
        Message(Kind.JUDGE, "a b", "{}")
    with pytest.raises(ValueError, match="fields"):
        Message(Kind.EXITED, 1, 2)


@pytest.mark.parametrize(
    "data",
    [b"Q 1", b"\xff 1", b"", b"X 1 2", b"X", b"W extra", b"P 1"],
    ids=["unknown kind", "not ascii", "empty", "missing field", "no fields", "field on a bare kind", "one short"],
)
def test_a_malformed_message_is_a_frame_error(data: bytes) -> None:
    with pytest.raises(FrameError):
        Message.decode(data)


def test_a_field_that_does_not_parse_is_a_frame_error() -> None:
    message = Message.decode(b"X 12 -9 1.5")
    assert (message.field(0, int), message.field(1, int), message.field(2, float)) == (12, -9, 1.5)
    with pytest.raises(FrameError):
        Message.decode(b"X twelve 0 0").field(0, int)
    with pytest.raises(FrameError):
        Message.decode(b"X 1 0 soon").field(2, float)
    with pytest.raises(FrameError):
        Message.decode(b"L \xff").field(0, bytes.decode)


def test_packets_pass_descriptors_and_an_oversize_packet_is_refused() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    read_fd, write_fd = os.pipe()
    with ours, theirs:
        send(ours, Message(Kind.FORK, 7), [read_fd])
        received = receive(theirs, max_fds=3)
        assert received is not None
        message, fds = received
        assert message == Message(Kind.FORK, 7) and len(fds) == 1
        os.write(write_fd, b"through")
        assert os.read(fds[0], 16) == b"through"  # the descriptor passed is the pipe
        os.close(fds[0])
        ours.send(b"V " + b"x" * PACKET_LIMIT)  # one byte over the bound
        with pytest.raises(FrameError, match="more than"):
            receive(theirs)
        ours.close()
        assert receive(theirs) is None  # end of file
    os.close(read_fd)
    os.close(write_fd)


def test_descriptors_beyond_the_bound_refuse_the_packet_and_close_what_came() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pipes = [os.pipe() for _ in range(2)]
    with ours, theirs:
        send(ours, Message(Kind.KILL, 1), [r for r, _ in pipes])
        with pytest.raises(FrameError, match="file descriptors"):
            receive(theirs, max_fds=1)
    for read_fd, write_fd in pipes:
        os.close(read_fd)
        with pytest.raises(BrokenPipeError):  # no copy of the read end is left open anywhere
            os.write(write_fd, b"x")
        os.close(write_fd)


@pytest.fixture
def pipe():
    read_fd, write_fd = os.pipe()
    ends = {"read": read_fd, "write": write_fd}
    yield ends
    for fd in ends.values():
        if fd >= 0:
            os.close(fd)


def close_writer(pipe: dict[str, int]) -> None:
    os.close(pipe["write"])
    pipe["write"] = -1


def test_a_frame_is_read_whole_and_nothing_after_it(pipe: dict[str, int]) -> None:
    write_all(pipe["write"], frame(Message(Kind.SETTINGS, '{"a": 1}')) + frame(Message(Kind.PROBLEM_DONE)))
    assert read_frame(pipe["read"], 1024, 10) == Message(Kind.SETTINGS, '{"a": 1}')
    assert os.read(pipe["read"], 64) == frame(Message(Kind.PROBLEM_DONE))  # left in the pipe
    close_writer(pipe)
    assert read_frame(pipe["read"], 1024, 10) is None


@pytest.mark.parametrize("written", [b"\x00\x00", frame(Message(Kind.VERDICT, "{}"))[:-1]], ids=["header", "body"])
def test_a_frame_cut_by_end_of_file_is_a_frame_error(pipe: dict[str, int], written: bytes) -> None:
    write_all(pipe["write"], written)
    close_writer(pipe)
    with pytest.raises(FrameError, match="cut"):
        read_frame(pipe["read"], 1024, 10)


def test_an_oversize_frame_is_refused_before_its_body_is_read(pipe: dict[str, int]) -> None:
    write_all(pipe["write"], (1 << 30).to_bytes(HEADER, "big"))
    with pytest.raises(FrameError, match="more than 1024"):
        read_frame(pipe["read"], 1024, 10)


def test_a_frame_that_does_not_come_in_time_is_a_frame_error(pipe: dict[str, int]) -> None:
    write_all(pipe["write"], frame(Message(Kind.VERDICT, "{}"))[:6])  # the writer stalls mid-frame
    with pytest.raises(FrameError, match="in time"):
        read_frame(pipe["read"], 1024, 0.05)


async def test_frames_on_the_event_loop(pipe: dict[str, int]) -> None:
    async def read(data: bytes, limit: int = 1024) -> Message | None:
        read_fd, write_fd = os.pipe()
        write_all(write_fd, data)
        os.close(write_fd)
        async with asyncio.timeout(30):
            return await read_frame_async(read_fd, limit)  # owns and closes read_fd

    assert await read(frame(Message(Kind.VERDICT, '{"status": "passed"}'))) == Message(
        Kind.VERDICT, '{"status": "passed"}'
    )
    assert await read(b"") is None
    with pytest.raises(FrameError, match="cut"):
        await read(frame(Message(Kind.VERDICT, "{}"))[:-1])
    with pytest.raises(FrameError, match="cut"):
        await read(b"\x00")
    with pytest.raises(FrameError, match="more than 8"):
        await read(frame(Message(Kind.VERDICT, "x" * 100)), limit=8)


FAKE_ZYGOTE = """import socket, sys, time
link = socket.socket(fileno=int(sys.argv[-1]))
link.recv(1 << 16)
link.send(sys.stdin.buffer.read() + b"7" * int(sys.argv[1]))  # the reply, padded
time.sleep(60)
"""


@pytest.mark.parametrize(
    ("reply", "padding"), [(b"P 1 x", 0), (b"Q 1 ", 2), (b"P 1 ", PACKET_LIMIT)], ids=["field", "kind", "oversize"]
)
async def test_a_zygote_that_answers_what_is_no_message_fails_its_request(reply: bytes, padding: int) -> None:
    """A fake zygote (named so: a script) answers a fork request with garbage: the request fails
    with a SandboxError at once (never a pid, never a wait for the reply deadline)."""
    zygote = Zygote([sys.executable, "-I", "-c", FAKE_ZYGOTE, str(padding)], {}, stdin=reply)
    await zygote.start()
    try:
        async with asyncio.timeout(30):
            with pytest.raises(SandboxError, match="exited"):
                await zygote.fork(Kind.FORK, [])
    finally:
        zygote.close()
