"""Wire format, oracle, result collector and program assembly (no processes)."""

from __future__ import annotations

import collections
import math
import re

import pytest

from koderz.datasets.expected import Expected, compact
from koderz.sandbox.checkenv import assemble
from koderz.sandbox.judge import Collector, ProtocolError
from koderz.sandbox.oracle import outputs_match
from koderz.sandbox.wire import RegexMatch, UnencodableValue, decode, encode


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        10**30,
        -2.5,
        math.inf,
        "a\nb",
        [1, (2, 3)],
        {5: "x", "5": 1},
        {1, 2},
        frozenset({3}),
        b"\x00\xff",
        1 + 2j,
        (),
    ],
)
def test_wire_round_trip(value) -> None:
    text = encode(value)
    assert "\n" not in text
    assert decode(text) == value and type(decode(text)) is type(value)


def test_wire_rejects_user_types() -> None:
    class MyInt(int):
        pass

    class Eq:
        def __eq__(self, other):
            return True

    for value in (MyInt(3), Eq(), [Eq()]):
        with pytest.raises(UnencodableValue):
            encode(value)
    with pytest.raises(ValueError):
        decode('{"t":"evil","v":1}')


def test_wire_stdlib_dicts_and_matches() -> None:
    assert decode(encode(collections.Counter("aab"))) == {"a": 2, "b": 1}
    match = decode(encode(re.match("a+", "aa")))
    assert isinstance(match, RegexMatch) and match != "aa" and match is not None


def test_oracle_semantics() -> None:
    assert outputs_match("humaneval", "f", (), True, 1, 0)  # == as in the original asserts
    assert outputs_match("humaneval", "f", (), 1.0000001, 1.0, 0)  # 1e-6 for float answers
    assert not outputs_match("humaneval", "f", (), 1.1, 1.0, 0)
    assert outputs_match("humaneval", "find_zero", ([-6, 11, -6, 1],), 1.0, 3.0, 0)  # any root
    assert not outputs_match("humaneval", "find_zero", ([-6, 11, -6, 1],), 1.5, 1.0, 0)
    assert outputs_match("mbpp", "check_str", ("a",), RegexMatch("a"), True, 0)


def _problem(humaneval):
    return humaneval["HumanEval/23"]


def test_collector_fast_path_and_protocol(humaneval) -> None:
    import dataclasses

    base = _problem(humaneval)
    problem = dataclasses.replace(
        base, dataset="humaneval_plus", expected=Expected([compact(encode(v)) for v in base.expected])
    )
    results = Collector(problem)
    results.feed(b'S 0 {"network": "namespace"}\n')
    for index, value in enumerate(base.expected):
        results.feed(b"V %d %s\n" % (index, encode(value).encode()))
    assert results.passed == len(base.expected) and results.first is None
    for bad in (b"S 0 {}\n", b"V 0 1\n", b"X 0 1\n", b"V zero 1\n"):
        with pytest.raises(ProtocolError):
            results.feed(bad)


def test_expected_digest_entries() -> None:
    text = encode(list(range(5000)))
    expected = Expected([compact(text), compact("1")])
    assert expected.text(0) is None and expected.same(0, text) and not expected.same(0, "[1]")
    assert expected[1] == 1 and len(expected) == 2


def test_assemble_hoists_future_imports() -> None:
    program = '"""doc"""\nfrom __future__ import annotations\n\ndef f(x: int) -> int:\n    return x\n'
    source = assemble("import math\n", program)
    assert source.startswith("from __future__ import annotations\nimport math\n")
    compile(source, "candidate.py", "exec")
