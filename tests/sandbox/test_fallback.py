"""Where no isolating mechanism works the sandbox stops before any attempt, and runs on limits
only when asked to (``sandbox.containment=limits_only``): then, as root, the program never runs
as uid 0 (a slot uid, no groups), its environment is empty and koderz's own ``/proc/<pid>/environ``
is unreadable to it. Without the fork server, and after it dies, attempts still run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from koderz.errors import SandboxError
from koderz.sandbox.mechanism import Mechanism
from koderz.sandbox.sandbox import Sandbox, SandboxConfig
from tests.support.escapes import environ_spy
from tests.support.readable_python import readable_python
from tests.support.sandbox_script import run_sandbox

REPO = Path(__file__).resolve().parents[2]
SECRET = "KZ-FALLBACK-SECRET"
SPY = environ_spy("strlen", SECRET)
MEMORY_ERROR = "def strlen(s):\n    return len(bytearray(16 * 1024 ** 3))\n"
DAEMON = """
import os, time
def strlen(s):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(600)
        os._exit(0)
    return -1
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "HOME": os.environ.get("HOME", str(tmp_path)), **extra}
    env["PYTHONPATH"] = str(REPO)
    for name in ("KODERZ_CACHE_DIR", "XDG_CACHE_HOME"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


@pytest.fixture(scope="module")
def python(tmp_path_factory) -> str:
    """An interpreter an unprivileged uid can read (as root: a venv over the system Python)."""
    if os.geteuid() != 0:
        return sys.executable
    found = readable_python(tmp_path_factory.mktemp("readable"))
    if found is None:
        pytest.skip("no system Python of this version whose standard library every uid can read")
    return found


def test_limits_only_runs_the_program_unprivileged_with_an_empty_environment(
    python, uid_base, tmp_path, leftovers
) -> None:
    report = run_sandbox(
        python,
        {"containment": "limits_only", "uid_base": uid_base},
        "HumanEval/23",
        ["", SPY, MEMORY_ERROR, DAEMON],
        _env(tmp_path, KZ_SECRET=SECRET),
        tmp_path,
    )
    ok, spy, memory, daemon = report["verdicts"]
    assert daemon["status"] == "failed"
    if daemon["isolation"]["processes"].startswith("cgroup") and os.geteuid() == 0:
        deadline = time.monotonic() + 10  # killed with its attempt's cgroup; reaped by init soon after
        while leftovers() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert leftovers() == []  # the daemon in a session of its own died with its attempt's cgroup
    assert ok["passed"] and ok["mechanism"] == Mechanism.LIMITS_ONLY == ok["isolation"]["mechanism"]
    assert ok["isolation"]["network"] == "shared" and ok["isolation"]["filesystem"] == "shared"
    got = spy["got"].strip("'")
    uid = int(got.split()[0].removeprefix("uid="))
    if os.geteuid() == 0:
        assert uid_base <= uid < uid_base + 64 and "groups=[]" in got and spy["isolation"]["user"] == f"uid {uid}"
    assert "env=[]" in got  # not even PATH
    assert got.endswith("seen=0")  # koderz is not dumpable: its environ is not readable
    assert memory["status"] == "error" and memory["error"].startswith("MemoryError")  # not "memory"
    assert report["summary"].startswith("sandbox containment: limits_only (asked for")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_root_without_capabilities_fails_closed(tmp_path) -> None:
    """Root in a locked-down container: no CAP_SYS_ADMIN (no unshare), no CAP_SETUID: nothing runs."""
    no_caps = ("setpriv", "--inh-caps=-all", "--bounding-set=-all")
    env = _env(tmp_path, KZ_SECRET=SECRET)
    auto = run_sandbox(sys.executable, {}, "HumanEval/23", [""], env, tmp_path, no_caps)
    assert "verdicts" not in auto
    assert auto["error"].startswith("no isolating sandbox works here (root_namespaces: containment failed")
    assert "; user_namespaces: containment failed" in auto["error"] and "; bubblewrap: " in auto["error"]
    assert auto["error"].endswith("or run without isolation explicitly with sandbox.containment=limits_only")
    limits = run_sandbox(sys.executable, {"containment": "limits_only"}, "HumanEval/23", [""], env, tmp_path, no_caps)
    assert limits["error"].startswith("sandbox.containment=limits_only is not available here: limits_only:")


async def test_an_unknown_or_misspelled_containment_is_refused_by_name() -> None:
    for name in ("chroot", "limits only"):
        with pytest.raises(SandboxError, match=f"sandbox.containment='{name}' is not one of auto, root_namespaces"):
            Sandbox(SandboxConfig(containment=name))


async def test_fresh_interpreter_per_attempt_without_fork_server(humaneval, uid_base) -> None:
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base, fork_server=False))
    problems = list(humaneval.values())[:12]
    verdicts = [await sandbox.evaluate(p, p.reference_program) for p in problems]
    assert all(v.passed for v in verdicts)
    assert sandbox.helper_pids().fork_server is None
    sandbox.close()


SHOWS_ITS_COMMAND = "import sys\ndef {entry}(*args):\n    return len(' '.join(sys.orig_argv))\n"


async def test_an_attempt_runs_under_a_short_command_not_its_program_source(humaneval_plus, uid_base) -> None:
    """What ``ps`` shows of an attempt (forked from the fork server, or a fresh interpreter): the
    interpreter and a short bootstrap, not the ~30 KB child program (read from stdin instead)."""
    problem = humaneval_plus["HumanEval/0"]
    for fork_server in (True, False):
        sandbox = Sandbox(SandboxConfig(uid_base=uid_base, fork_server=fork_server))
        try:
            verdict = await sandbox.evaluate(problem, SHOWS_ITS_COMMAND.format(entry=problem.entry_point))
        finally:
            sandbox.close()
        assert not verdict.passed and verdict.got is not None, verdict.feedback()
        assert int(verdict.got) < 1000, (fork_server, verdict.got)  # the program alone is ~30,000 characters


async def test_runner_survives_fork_server_death(humaneval, uid_base) -> None:
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base))
    problem = humaneval["HumanEval/23"]
    assert (await sandbox.evaluate(problem, problem.reference_program)).passed
    zygote = sandbox.helper_pids().fork_server
    assert zygote is not None
    os.kill(zygote, signal.SIGKILL)  # the sandbox started it for this test
    again = [await sandbox.evaluate(problem, problem.reference_program) for _ in range(2)]
    assert all(v.passed for v in again)
    sandbox.close()


SLEEPER_SCRIPT = """
import asyncio, os, sys
from koderz.datasets.loaders import load_dataset
from koderz.sandbox.sandbox import Sandbox, SandboxConfig
async def main():
    problem = {p.task_id: p for p in load_dataset("humaneval")}["HumanEval/23"]
    sandbox = Sandbox(SandboxConfig(uid_base=%d, fork_server=%s))
    await sandbox.prepare()  # its probe (which also runs as a slot uid) is over
    print("ready", flush=True)
    await sandbox.evaluate(problem, "import time\\ndef strlen(s):\\n    time.sleep(600)\\n")
asyncio.run(main())
"""


@pytest.mark.parametrize("fork_server", [True, False])
def test_attempts_die_with_a_killed_koderz(fork_server, uid_base, leftovers, tmp_path) -> None:
    """koderz SIGKILLed mid-attempt (no cleanup runs): its attempts must not live on."""

    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp_path))  # its attempt dirs stay in tmp_path
    proc = subprocess.Popen(
        [sys.executable, "-c", SLEEPER_SCRIPT % (uid_base, fork_server)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 30
    while not leftovers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftovers(), "the attempt never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftovers() == []
