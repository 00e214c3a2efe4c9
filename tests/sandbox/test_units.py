"""Wire format, bounded decoding, oracle, result collector and verdict texts (no processes)."""

from __future__ import annotations

import ast
import asyncio
import collections
import contextlib
import dataclasses
import math
import re
import socket
from typing import Any

import pytest

from koderz.answers import wire
from koderz.answers.oracle import Oracle
from koderz.answers.wire import OverLimit, RegexMatch, UnencodableValue, decode, encode
from koderz.datasets.expected import Expected, compact
from koderz.errors import SandboxError
from koderz.framing import Kind, Message
from koderz.sandbox.judge import AnswerLimits, Collector, Judgement, ProtocolError, short_repr
from koderz.sandbox.judge_server import _Stream
from koderz.sandbox.mechanism import Mechanism
from koderz.sandbox.sandbox import _both, child_source
from koderz.sandbox.stop import Measured, Stop, StopKind
from koderz.sandbox.verdict import Verdict, clean_text
from koderz.sandbox.zygote import Zygote
from koderz.vocab import Status

LIMITS = AnswerLimits(
    send_limit=1 << 20, answer_bytes=64 << 20, max_depth=100, max_items=400_000, max_int_digits=10_000
)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        10**30,
        -(10**30),
        -2.5,
        math.inf,
        -math.inf,
        "a\nb",
        [1, (2, 3)],
        {5: "x", "5": 1},
        {1, 2},
        frozenset({3}),
        b"\x00\xff",
        1 + 2j,
        complex(math.inf, -1),
        (),
    ],
)
def test_wire_round_trip(value) -> None:
    text = encode(value)
    assert "\n" not in text
    assert decode(text) == value and type(decode(text)) is type(value)


def _long_sequences() -> list[object]:
    """Long sequences the encoder may take whole, with the values that must stop it anywhere in them."""
    stoppers = [math.nan, math.inf, -math.inf, 10**15, -(10**15), 10**400, 1e300, (1,), [1], {"a": 1}]
    bases: list[list[Any]] = [
        list(range(40)),
        [0.5 * i for i in range(40)],
        [True, False, None, "x"] * 10,
        [i % 2 == 0 for i in range(40)],
    ]
    values: list[Any] = [*bases, [1, 2.5] * 20, [10**15 - 1, -(10**15) + 1] * 10, ["a"] * 15, [1.5] * 15]
    for base in bases:
        for stopper in stoppers:
            for at in (0, 17, len(base)):
                values.append([*base[:at], stopper, *base[at:]])
    return [*values, *(tuple(v) for v in values), {0.25 * i for i in range(40)}, frozenset(range(-20, 20))]


def test_wire_long_sequences_encode_as_item_by_item(monkeypatch) -> None:
    taken_whole = [wire._flat(v) for v in _long_sequences() if not isinstance(v, (set, frozenset))]
    assert any(taken_whole) and not all(taken_whole)
    whole = [encode(value) for value in _long_sequences()]
    monkeypatch.setattr(wire, "_FLAT_MIN", 10**9)  # every sequence encoded item by item
    assert whole == [encode(value) for value in _long_sequences()]
    assert all(isinstance(decode(text), (list, tuple, set, frozenset)) for text in whole)


def test_wire_rejects_user_types() -> None:
    class MyInt(int):
        pass

    class Eq:
        def __eq__(self, other):
            return True

    for value in (MyInt(3), Eq(), [Eq()], [*range(20), MyInt(3)], (*"abcdefghijklmnopqrst", Eq())):
        with pytest.raises(UnencodableValue):
            encode(value)


@pytest.mark.parametrize(
    "text",
    [
        '{"t":"evil","v":1}',  # unknown tag
        '{"t":"float","v":"1.5"}',  # only nan/inf travel tagged
        '{"t":"int"}',  # tag without value (was a KeyError)
        '{"t":"int","v":5}',  # int payload must be hex text
        '{"t":"tuple","v":"ab"}',
        '{"t":"dict","v":[[1]]}',
        '{"t":"complex","v":[1]}',
        '{"t":"bytes","v":"!!"}',
        "1e999",  # an untagged infinity
        "NaN",
        "1" * 40,  # an untagged int beyond what encode writes plainly
        "[1,",
    ],
)
def test_decode_rejects_what_encode_never_writes(text) -> None:
    with pytest.raises((ValueError, TypeError)):
        decode(text, max_depth=100, max_items=1000, max_int_digits=1000)


def test_decode_limits() -> None:
    with pytest.raises(OverLimit, match="nested deeper"):
        decode("[" * 50 + "]" * 50, max_depth=20, max_items=1000, max_int_digits=100)
    with pytest.raises(OverLimit, match="more than 10 values"):
        decode(encode(list(range(11))), max_depth=20, max_items=10, max_int_digits=100)
    with pytest.raises(OverLimit, match="int of more than 100 digits"):
        decode(encode(10**200), max_depth=20, max_items=10, max_int_digits=100)
    assert decode(encode(10**99), max_depth=20, max_items=10, max_int_digits=100) == 10**99
    with pytest.raises(RecursionError):
        decode("[" * 100_000 + "]" * 100_000)  # json's own recursion guard: an exception, not a crash


def test_decoded_nan_is_never_equal() -> None:
    assert decode(encode([math.nan])) != decode(encode([math.nan]))


def test_wire_stdlib_dicts_and_matches() -> None:
    assert decode(encode(collections.Counter("aab"))) == {"a": 2, "b": 1}
    match = decode(encode(re.match("a+", "aa")))
    assert isinstance(match, RegexMatch) and match != "aa" and match is not None


def _judge(values, family="humaneval", entry="f", atol=0.0, args=()):
    oracle = Oracle(family, entry, atol)
    return [oracle.judge(args, out, exp) for out, exp in values]


def test_oracle_floats_inf_and_nesting() -> None:
    assert _judge([(True, 1), (1.0000001, 1.0), (1.1, 1.0)]) == [True, True, False]
    # an infinity is only equal to itself (the tolerance is not infinite)
    assert _judge([(1e308, math.inf), (-math.inf, math.inf), (math.inf, math.inf)]) == [False, False, True]
    # nesting changes the shape: rejected, as numpy's allclose does (broadcasting aside)
    assert _judge([([[1.5], [2.5]], [1.5, 2.5]), ([1.5, 2.5], [1.5, 2.5])]) == [False, True]
    assert _judge([([float("nan")], [float("nan")])]) == [False]


def test_oracle_keeps_evalplus_atol_quirk() -> None:
    """After the first float answer, atol is 1e-6 for the rest of the run (int lists included)."""
    before = _judge([([1, 2.0000001], [1, 2])])
    after = _judge([(0.5, 0.5), ([1, 2.0000001], [1, 2])])
    assert before == [False] and after == [True, True]


def test_oracle_special_cases() -> None:
    assert _judge([(1.0, 3.0)], entry="find_zero", args=([-6, 11, -6, 1],)) == [True]  # any root
    assert _judge([(1.5, 1.0)], entry="find_zero", args=([-6, 11, -6, 1],)) == [False]
    assert _judge([(RegexMatch("a"), True)], family="mbpp", entry="check_str") == [True]
    assert _judge([([3, 1, 2], [1, 2, 3])], family="mbpp", entry="similar_elements") == [True]
    assert _judge([([[1]], [1])], family="mbpp", entry="similar_elements") == [False]  # unhashable: a failure


def _plus_problem(humaneval, task="HumanEval/23"):
    base = humaneval[task]
    return dataclasses.replace(
        base,
        dataset="humaneval_plus",
        replays_check=False,
        expected=Expected([compact(encode(v)) for v in base.expected]),
        base_input_count=2,
        extra={"family": "humaneval"},
    )


def _feed(collector: Collector, *lines: bytes) -> None:
    for line in lines:
        collector.feed(line)


def test_collector_fast_path_base_passed_and_protocol(humaneval) -> None:
    problem = _plus_problem(humaneval)
    results = Collector(problem, LIMITS)
    _feed(results, b'S 0 {"network": "namespace"}')
    for index, value in enumerate(problem.expected):
        results.feed(b"V %d %s" % (index, encode(value).encode()))
    judgement = results.judgement()
    assert judgement.status == "passed" and judgement.tests_passed == judgement.tests_run == len(problem.inputs)
    assert judgement.base_passed is True
    for bad in (b"S 0 {}", b"V 0 1", b"X 0 1", b"V zero 1", b'E 99 {"err":"x"}'):
        with pytest.raises(ProtocolError):
            results.feed(bad)


def test_collector_base_passed_after_a_plus_failure(humaneval) -> None:
    problem = _plus_problem(humaneval)
    results = Collector(problem, LIMITS)
    _feed(results, b"S 0 {}", *(b"V %d %s" % (i, encode(v).encode()) for i, v in enumerate(problem.expected[:2])))
    _feed(results, b"V 2 -1")
    judgement = results.judgement()
    assert judgement.status == "failed" and judgement.base_passed is True and judgement.got == "-1"
    assert (judgement.tests_passed, judgement.tests_run) == (2, 3)  # the stream stopped after test 3


def test_collector_never_counts_an_undecodable_answer(humaneval) -> None:
    """A malformed tag used to end the reader silently with the test counted: a false pass."""
    problem = _plus_problem(humaneval)
    results = Collector(problem, LIMITS)
    _feed(results, b"S 0 {}", *(b"V %d %s" % (i, encode(v).encode()) for i, v in enumerate(problem.expected[:-1])))
    last = len(problem.expected) - 1
    with pytest.raises(ProtocolError, match="undecodable"):
        results.feed(b'V %d {"t":"int"}' % last)
    assert results.passed == last  # the last test was never judged equal
    with pytest.raises(OverLimit):
        Collector(problem, dataclasses.replace(LIMITS, max_int_digits=10)).decode(0, encode(10**50))


def test_collector_incomplete_stream(humaneval) -> None:
    problem = _plus_problem(humaneval)
    results = Collector(problem, LIMITS)
    _feed(results, b"S 0 {}", b"V 0 " + encode(problem.expected[0]).encode())
    judgement = results.judgement()
    assert judgement.status == "incomplete" and judgement.tests_passed == 1 and judgement.base_passed is False
    assert judgement.tests_run == 1  # the sandbox counts the test it stopped in


def test_collector_result_before_setup_report(humaneval) -> None:
    with pytest.raises(ProtocolError, match="before the setup report"):
        Collector(_plus_problem(humaneval), LIMITS).feed(b"V 0 1")


def test_stream_limits(humaneval) -> None:
    problem = _plus_problem(humaneval)
    small = dataclasses.replace(LIMITS, send_limit=10, answer_bytes=200_000)
    stream = _Stream(Collector(problem, small), small)
    stream.take(b"S 0 {}\nV 0 " + encode(problem.expected[0]).encode() + b"\nV 1 ")
    assert stream.collector.passed == 1
    with pytest.raises(OverLimit, match="longer than"):
        stream.take(b"7" * 70_000)  # a line beyond line_bytes, even before its newline arrives
    stream = _Stream(Collector(problem, small), small)
    stream.take(b"S 0 {}\n")
    with pytest.raises(OverLimit, match="in all"):
        for _ in range(10):
            stream.take(b"D 0 \n" * 5_000)


def test_short_repr_is_bounded_for_hostile_values() -> None:
    assert short_repr(10**5000).startswith("<int of 5001 digits")  # repr() itself would raise
    assert len(short_repr(list(range(10**6)))) <= 300
    assert len(short_repr("x" * 10**6)) <= 300
    assert short_repr("\ud800") == "'\\ud800'"


def test_verdict_texts_are_bounded_utf8() -> None:
    verdict = Verdict(False, Status.ERROR, 0, 1, 1, error="\ud800" * 5000, got="é" * 1000, output="x" * 10**6)
    assert verdict.error is not None and verdict.got is not None
    for text in (verdict.error, verdict.got, verdict.output):
        text.encode("utf-8")  # no lone surrogate left
    assert len(verdict.error) <= 1000 and len(verdict.got) <= 300 and len(verdict.output) <= 64 * 1024
    assert clean_text("abc", 10) == "abc"


def test_feedback_shows_the_traceback_header_once() -> None:
    tb = 'Traceback (most recent call last):\n  File "candidate.py", line 3, in f\nZeroDivisionError: division by zero'
    feedback = Verdict(
        False, Status.ERROR, 0, 1, 1, error="ZeroDivisionError: division by zero", traceback=tb
    ).feedback()
    assert feedback.count("Traceback") == 1 and 'File "candidate.py", line 3' in feedback


def test_judgement_round_trips_as_json() -> None:
    judgement = Judgement("failed", 3, "(1,)", "2", "3", base_passed=True, isolation={"pid": "namespace"})
    assert Judgement.from_json(judgement.to_json()) == judgement


def test_expected_digest_entries_and_floats() -> None:
    text = encode(list(range(5000)))
    expected = Expected([compact(text), compact("1")], floats=frozenset({1}))
    assert expected.text(0) is None and expected.same(0, text) and not expected.same(0, "[1]")
    assert expected[1] == 1 and len(expected) == 2
    assert expected.is_floats(1) and not expected.is_floats(0)


async def test_a_zygote_request_waits_for_room_when_the_socket_is_full() -> None:
    """Requests go out straight from the event loop; with the socket's buffer full the request
    waits until the zygote has read (here: a reader that drains after the send began)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    with ours, theirs:
        filled = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                ours.send(b"x" * 1024)
                filled += 1
        sending = asyncio.ensure_future(Zygote(["true"], {})._send(ours, Message(Kind.KILL, 7), []))
        await asyncio.sleep(0.05)
        assert not sending.done()  # waiting for room, not dropped or failed
        for _ in range(filled):
            theirs.recv(2048)
        async with asyncio.timeout(10):
            await sending
        assert theirs.recv(64) == b"K 7"


class FakeJudgeJob:
    """Stands in for a ``JudgeJob``: records being killed and closed."""

    def __init__(self) -> None:
        self.killed = self.closed = False

    def kill(self) -> None:
        self.killed = True

    def close(self) -> None:
        self.closed = True


class FakeAttempt:
    """Stands in for an attempt process blocked reading its job: records being killed."""

    killed = False

    def kill(self) -> None:
        self.killed = True


async def _after(seconds: float, value: object) -> object:
    await asyncio.sleep(seconds)
    if isinstance(value, BaseException):
        raise value
    return value


async def test_judge_and_attempt_start_together_and_undo_each_other() -> None:
    """The judge is handed its pipe while the attempt is forked; when one of them fails, the
    other is undone (the judge killed and closed, the attempt killed) and the failure goes on."""
    judge, attempt = FakeJudgeJob(), FakeAttempt()
    assert await _both(_after(0, judge), _after(0, attempt)) == (judge, attempt)  # type: ignore[arg-type]
    assert not (judge.killed or attempt.killed)

    with pytest.raises(SandboxError, match="no fork"):
        await _both(_after(0, judge), _after(0.01, SandboxError("no fork")))  # type: ignore[arg-type]
    assert judge.killed and judge.closed

    with pytest.raises(SandboxError, match="no judge"):
        await _both(_after(0.01, SandboxError("no judge")), _after(0, attempt))
    assert attempt.killed


async def test_a_cancelled_start_undoes_what_was_started() -> None:
    judge, attempt = FakeJudgeJob(), FakeAttempt()
    starting = asyncio.ensure_future(_both(_after(0, judge), _after(30, attempt)))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)  # the judge is started, the attempt is still being forked
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert judge.killed and judge.closed and not attempt.killed


async def test_the_attempt_is_forked_while_the_judge_is_handed_its_pipe() -> None:
    judge, attempt = FakeJudgeJob(), FakeAttempt()
    forking = asyncio.Event()

    async def judging() -> FakeJudgeJob:
        async with asyncio.timeout(10):
            await forking.wait()  # handed one after the other, this would never end
        return judge

    async def spawning() -> FakeAttempt:
        forking.set()
        return attempt

    assert await _both(judging(), spawning()) == (judge, attempt)  # type: ignore[arg-type]


def test_the_child_names_the_mechanisms_as_the_enum_does() -> None:
    names = {"ROOT_NAMESPACES", "USER_NAMESPACES", "BUBBLEWRAP", "LIMITS_ONLY"}
    (assignment,) = [
        node
        for node in ast.parse(child_source()).body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Tuple)
        and {getattr(t, "id", "") for t in node.targets[0].elts} == names
    ]
    assert ast.literal_eval(assignment.value) == tuple(Mechanism)


@pytest.mark.parametrize(
    ("measured", "stop"),
    [
        (Measured(3, 0.01, False, False, 124), Stop(StopKind.EXIT, 124)),  # the program's own exit code
        (Measured(3, 3.0, False, False, 137), Stop(StopKind.CPU)),  # CPU measured at the limit
        (Measured(3, None, False, False, -24), Stop(StopKind.SIGNAL, 24)),  # SIGXCPU, nothing measured
        (Measured(3, 0.2, True, False, 137), Stop(StopKind.MEMORY)),  # the cgroup counted an OOM kill
        (Measured(3, 0.2, False, True, None), Stop(StopKind.WALL)),
    ],
)
def test_a_stop_is_what_the_trusted_side_measured(measured, stop) -> None:
    assert Stop.of(measured) == stop
