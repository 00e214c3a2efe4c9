"""Programs for sandbox tests and benchmarks: a program from a body, the reference wrapped around a
body, forged result lines, and the attacks on the trusted side (each with its exact verdict)."""

from __future__ import annotations

from typing import Any


def define(entry: str, body: str, prelude: str = "") -> str:
    """A program defining ``entry(*args)`` with ``body`` (indented) after ``prelude``."""
    indented = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return f"{prelude}\ndef {entry}(*args, **kwargs):\n{indented}\n"


FIND_RESULTS = '''
def _results():
    """The child's results stream (a TextIOWrapper on a dup of the results pipe)."""
    import gc, io
    for obj in gc.get_objects():
        if isinstance(obj, io.TextIOWrapper) and isinstance(obj.name, int) and obj.name > 2 and "w" in obj.mode:
            return obj
'''


def wrapped(problem, body: str) -> str:
    """The reference solution renamed ``_real``; the entry point runs ``body`` (call number ``i``)."""
    indented = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return (
        f"{problem.reference_program}\n_real = {problem.entry_point}\n_calls = [0]\n{FIND_RESULTS}\n"
        f"def {problem.entry_point}(*args):\n    i = _calls[0]\n    _calls[0] += 1\n{indented}\n"
    )


def forging(problem, line: str, at: int) -> str:
    """Correct answers, then at call ``at`` the forged result ``line`` (Python expression) and exit."""
    return wrapped(
        problem,
        f"""
if i == {at}:
    out = _results()
    out.write({line} + "\\n")
    out.flush()
    import os
    os._exit(0)
return _real(*args)
""",
    )


COLLIDING = "[{'t': 'int', 'v': hex(k * (2**61 - 1))} for k in range(1, 24000)]"  # all hash to 0


def judge_attacks(humaneval: Any, humaneval_plus: Any, mbpp_plus: Any) -> dict[str, tuple[Any, str, str, str]]:
    """name -> (problem, program, exact status, text the error or got must contain)."""
    he, hp, mp = humaneval["HumanEval/23"], humaneval_plus["HumanEval/21"], mbpp_plus
    last = len(hp.inputs) - 1
    return {
        # false passes an old judge gave: infinite tolerance at inf, flattened nesting, a skipped last test
        "finite_for_inf": (
            mp["Mbpp/137"],
            wrapped(mp["Mbpp/137"], "r = _real(*args)\nreturn 1e308 if r == float('inf') else r"),
            "failed",
            "1e+308",
        ),
        "finite_for_minus_inf": (
            mp["Mbpp/404"],
            wrapped(mp["Mbpp/404"], "r = _real(*args)\nreturn -1e308 if r == float('-inf') else r"),
            "failed",
            "-1e+308",
        ),
        "nested_list": (hp, wrapped(hp, "return [[x] for x in _real(*args)]"), "failed", "[["),
        "malformed_tag_on_last_test": (
            hp,
            forging(hp, f'\'V {last} \' + \'{{"t":"float","v":"1.5"}}\'', last),  # a KeyError once
            "error",
            f"undecodable answer to test {last}",
        ),
        "recursion_on_last_test": (
            hp,
            forging(hp, f"'V {last} ' + '[' * 100000 + ']' * 100000", last),
            "error",
            "RecursionError",
        ),
        "untagged_infinity": (hp, forging(hp, "'V 0 1e999'", 0), "error", "untagged non-finite float"),
        # stalls: hash collisions judged as a set (sent as one, or a list an MBPP oracle turns into one)
        "colliding_set": (
            hp,
            forging(
                hp, "'V 0 ' + __import__('json').dumps({'t': 'set', 'v': " + COLLIDING + "}, separators=(',', ':'))", 0
            ),
            "error",
            "CPU budget of 1 s",
        ),
        "colliding_list_judged_as_set": (
            mp["Mbpp/2"],
            wrapped(mp["Mbpp/2"], "return [k * (2**61 - 1) for k in range(1, 24000)]"),
            "error",
            "CPU budget of 1 s",
        ),
        "huge_set": (hp, wrapped(hp, "return set(range(120_000))"), "error", "more than 100000 values"),
        # crashes: an int whose repr raises, an int over the digit limit, nesting over the depth limit
        "huge_int_humaneval": (he, define(he.entry_point, "return 10 ** 5000"), "failed", "<int of 5001 digits"),
        "huge_int_plus": (hp, wrapped(hp, "return 10 ** 5000"), "failed", "<int of 5001 digits"),
        "int_over_digit_limit": (hp, wrapped(hp, "return 10 ** 1_200_000"), "error", "more than 1100000 digits"),
        "deep_nesting": (
            hp,
            forging(hp, "'V 0 ' + '[' * 150 + ']' * 150", 0),
            "error",
            "nested deeper than 100 levels",
        ),
        # parent memory: a line without end, a huge answer on humaneval
        "endless_line": (
            hp,
            forging(hp, "'V 0 [' + '1,' * (100 * 2**20)", 0),
            "error",
            "result line is longer than",
        ),
        "huge_answer_humaneval": (he, define(he.entry_point, "return 'x' * (10 * 2**20)"), "error", "over the limit"),
    }


FORK_SPINNERS = """
import os, time
def {entry}(*args):
    for _ in range({count}):
        if os.fork() == 0:
            os.setsid()  # a session of its own: its own scheduler group, without a cgroup
            while True:
                pass
    while True:  # the attempt's first process itself uses no CPU
        time.sleep(1)
"""


def fork_spinners(entry: str, count: int = 12) -> str:
    """A program whose ``entry`` forks ``count`` CPU spinners, each in a new session, then sleeps."""
    return FORK_SPINNERS.format(entry=entry, count=count)
