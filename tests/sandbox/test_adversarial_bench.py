"""Hostile BigCodeBench solutions and LiveCodeBench (stdin and functional) programs: each fails,
never passes, and is contained (no process outlives it, no file reaches the host, no test file is
read). The BigCodeBench ones run with the fork server preloading the tasks' libraries, so that an
attempt that tampers with a preloaded module (pyplot, unittest) is followed by an honest one."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from koderz.bench.bigcodebench import BigCodeBenchEvaluator, BigCodeBenchJudging, preload_modules, sandbox_config
from koderz.bench.livecodebench import LiveCodeBenchEvaluator, LiveCodeBenchJudging
from koderz.problems import load_benchmark
from koderz.sandbox.sandbox import Sandbox
from tests.support.bench_files import BCB_FILE, BCB_SAMPLES, LCB_FILE, bcb_config, bcb_samples, lcb_config
from tests.support.bench_files import sandbox_config as base_config

WRONG_COUNTER = (
    "from collections import Counter\n\ndef task_func(words):\n    return sorted(words)[-1] if words else None\n"
)
PREAMBLE = "import os, sys, unittest\n"

# KoderzBCB/0: task_func(words) -> the most common word; its tests: test_basic, test_tie, test_empty
BCB_ATTACKS = {
    "patch_assert": "unittest.TestCase.assertEqual = lambda *a, **k: None\nunittest.TestCase.assertRaises = "
    "lambda *a, **k: __import__('contextlib').suppress(BaseException)\n",
    "swap_testcase": "class _Lenient(unittest.TestCase):\n    def assertEqual(self, *a, **k): pass\n"
    "    def assertRaises(self, *a, **k): return __import__('contextlib').suppress(BaseException)\n"
    "unittest.TestCase = _Lenient\n",
    "swap_then_restore": "_real = unittest.TestCase\nclass _Lenient(_real):\n    def assertEqual(self, *a, **k): pass\n"
    "    def assertRaises(self, *a, **k): return __import__('contextlib').suppress(BaseException)\n"
    "unittest.TestCase = _Lenient\n_first = task_func\ndef task_func(words):\n"
    "    unittest.TestCase = _real\n    return _first(words)\n",
    "swap_result": "class _Quiet(unittest.TestResult):\n    def addFailure(self, *a): pass\n"
    "    def addError(self, *a): pass\nunittest.TestResult = _Quiet\n",
    "swap_module": "import types\n_fake = types.ModuleType('unittest')\n_fake.__dict__.update(vars(unittest))\n"
    "class _Lenient(unittest.TestCase):\n    def assertEqual(self, *a, **k): pass\n"
    "    def assertRaises(self, *a, **k): return __import__('contextlib').suppress(BaseException)\n"
    "_fake.TestCase = _Lenient\nsys.modules['unittest'] = _fake\n",
    "patch_outcome": "import unittest.case\n_real = unittest.case._Outcome.testPartExecutor\n"
    "import contextlib\n@contextlib.contextmanager\ndef _swallow(self, *a, **k):\n"
    "    try:\n        yield\n    except BaseException:\n        pass\n"
    "unittest.case._Outcome.testPartExecutor = _swallow\n",
    "stop_the_run": "def task_func(words):\n    for o in __import__('gc').get_objects():\n"
    "        if isinstance(o, unittest.TestResult):\n            o.stop()\n    return 'b'\n",
    "skip_every_test": "_first = task_func\ndef task_func(words):\n    raise unittest.SkipTest('no')\n",
    "sys_exit_in_test": "def task_func(words):\n    sys.exit(0)\n",
    "exit_at_import": "sys.exit(0)\n",
}


@pytest.fixture
def marker() -> str:
    return "koderz-bench-adv-" + uuid.uuid4().hex[:10]


def _bcb_file_attacks(marker: str) -> dict[str, str]:
    """Attacks on the files: read the tests (to answer from them), write expected outputs, fork."""
    answer_from_tests = f"""
import json
def task_func(words):
    for path in ({str(BCB_FILE)!r}, {str(BCB_SAMPLES)!r}):
        try:
            with open(path) as f:
                return 'read:' + f.read(20)
        except OSError:
            pass
    return 'nothing readable'
"""
    write_expected = f"""
import os
def task_func(words):
    for path in ({str(BCB_FILE.parent / marker)!r}, '/tmp/{marker}', os.path.expanduser('~/{marker}'),
                 {str(Path.home() / marker)!r}):
        try:
            with open(path, 'w') as f:
                f.write('expected: b')
        except OSError:
            pass
    return sorted(words)[-1] if words else None
"""
    fork_and_report = f"""
import os, time
def task_func(words):
    if os.fork() == 0:
        os.setsid()
        time.sleep(30)
        open('/tmp/{marker}', 'w').write('survived')
        os._exit(0)
    return None
"""
    return {"answer_from_tests": answer_from_tests, "write_expected": write_expected, "fork": fork_and_report}


async def test_bigcodebench_attacks_fail_and_leave_nothing(marker, leftovers) -> None:
    judging = BigCodeBenchJudging(time_limit=3)
    problems = {p.task_id: p for p in load_benchmark(bcb_config())}
    sandbox = Sandbox(sandbox_config(base_config(), judging, preload_modules(problems.values())))
    evaluator = BigCodeBenchEvaluator(sandbox, judging)
    counter = problems["KoderzBCB/0"]
    attacks = {name: PREAMBLE + WRONG_COUNTER + code for name, code in BCB_ATTACKS.items()}
    attacks |= _bcb_file_attacks(marker)
    try:
        judged = dict(
            zip(attacks, await asyncio.gather(*(evaluator.evaluate(counter, a) for a in attacks.values())), strict=True)
        )
        canonical = next(s for s in bcb_samples() if s.task_id == "KoderzBCB/0" and s.variant == "canonical")
        honest = await evaluator.evaluate(counter, canonical.solution)  # after every attack, on the same fork server
    finally:
        sandbox.close()
    assert {name: j.passed for name, j in judged.items() if j.passed} == {}
    assert honest.passed, honest.feedback()
    for name in ("patch_assert", "swap_testcase", "swap_then_restore", "swap_module", "patch_outcome"):
        assert "tampered" in judged[name].feedback(), (name, judged[name].feedback())
    assert "skipped" in judged["skip_every_test"].feedback()
    assert "not run" in judged["stop_the_run"].feedback(), judged["stop_the_run"].feedback()
    assert "nothing readable" in judged["answer_from_tests"].feedback(), judged["answer_from_tests"].feedback()
    assert leftovers(sandbox.config.uid_base) == []  # this sandbox's slot uids
    assert not (BCB_FILE.parent / marker).exists() and not (Path("/tmp") / marker).exists()
    assert not (Path.home() / marker).exists()


async def test_a_pyplot_sabotaged_by_one_attempt_is_whole_in_the_next() -> None:
    """A solution that switches the preloaded pyplot's backend and breaks ``plt.subplots`` fails;
    the canonical solution judged next, forked from the same zygote, passes."""
    judging = BigCodeBenchJudging(time_limit=3)
    problems = {p.task_id: p for p in load_benchmark(bcb_config())}
    sandbox = Sandbox(sandbox_config(base_config(), judging, preload_modules(problems.values())))
    evaluator = BigCodeBenchEvaluator(sandbox, judging)
    plot = problems["KoderzBCB/24"]  # task_func(values) -> an Axes titled 'Values'
    sabotage = (
        "import matplotlib\nimport matplotlib.pyplot as plt\nplt.switch_backend('pdf')\n"
        "plt.subplots = lambda *a, **k: (_ for _ in ()).throw(RuntimeError('sabotaged'))\n"
        "def task_func(values):\n    fig, ax = plt.subplots()\n    return ax\n"
    )
    canonical = next(s for s in bcb_samples() if s.task_id == "KoderzBCB/24" and s.variant == "canonical")
    try:
        assert "matplotlib.pyplot" in (await sandbox.preload_report()).loaded
        attack = await evaluator.evaluate(plot, sabotage)
        honest = await evaluator.evaluate(plot, canonical.solution)
    finally:
        sandbox.close()
    assert not attack.passed and "sabotaged" in attack.feedback(), attack.feedback()
    assert honest.passed, honest.feedback()


def _lcb_attacks(marker: str) -> dict[str, tuple[str, str]]:
    """name -> (question id, program). kz0 reads ``a b`` and prints a + b; kz16 is twoSum."""
    read_tests = f"""
found = []
for path in ({str(LCB_FILE)!r}, {str(LCB_FILE.parent / "samples.jsonl")!r}):
    try:
        found.append(open(path).read(20))
    except OSError:
        pass
print('read:' + '|'.join(found) if found else 'nothing readable')
"""
    return {
        "exit_before_output": ("kz0", "import sys\nsys.exit(0)\nprint(sum(map(int, input().split())))\n"),
        "os_exit_after_output": ("kz0", "import os\nprint(0)\nos._exit(0)\n"),
        "read_tests": ("kz0", read_tests),
        "write_expected": (
            "kz0",
            f"for p in ('expected_output.txt', '/tmp/{marker}', {str(LCB_FILE.parent / marker)!r}):\n"
            f"    try:\n        open(p, 'w').write('3\\n')\n    except OSError:\n        pass\nprint(-1)\n",
        ),
        "fork_prints_later": (
            "kz0",
            f"import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(20)\n"
            f"    open('/tmp/{marker}', 'w').write('survived')\n    print(3)\n    os._exit(0)\n",
        ),
        "patch_stdout": (
            "kz0",
            "import sys, builtins\n_print = builtins.print\nbuiltins.print = lambda *a, **k: None\n"
            "sys.stdout.write = lambda *a: 0\nprint(-1)\n",
        ),
        "always_equal": (
            "kz16",
            "class _Eq(list):\n    def __eq__(self, other): return True\n    __hash__ = None\n"
            "class Solution:\n    def twoSum(self, nums, target):\n        return _Eq()\n",
        ),
        "exit_in_function": (
            "kz16",
            "import sys\nclass Solution:\n    def twoSum(self, nums, target):\n        sys.exit(0)\n",
        ),
    }


async def test_livecodebench_attacks_fail_and_leave_nothing(marker, leftovers) -> None:
    problems = {p.task_id: p for p in load_benchmark(lcb_config())}
    sandbox = Sandbox(base_config(cpu_floor=2.0, cpu_factor=1.0))
    evaluator = LiveCodeBenchEvaluator(sandbox, LiveCodeBenchJudging(timeout=2))
    attacks = _lcb_attacks(marker)
    try:
        judged = dict(
            zip(
                attacks,
                await asyncio.gather(*(evaluator.evaluate(problems[q], program) for q, program in attacks.values())),
                strict=True,
            )
        )
    finally:
        sandbox.close()
    assert {name: j.feedback() for name, j in judged.items() if j.passed} == {}
    assert "nothing readable" in judged["read_tests"].feedback(), judged["read_tests"].feedback()
    assert leftovers(sandbox.config.uid_base) == []  # this sandbox's slot uids
    assert not (Path("/tmp") / marker).exists() and not (LCB_FILE.parent / marker).exists()
    assert not (LCB_FILE.parent / "expected_output.txt").exists()
