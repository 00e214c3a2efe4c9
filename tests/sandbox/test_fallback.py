"""Where namespaces or privileges are unavailable the sandbox still runs, on rlimits,
and says what did not hold in ``verdict.isolation`` (``mechanism``, ``note``, ``hint``)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from koderz.sandbox.sandbox import Sandbox, SandboxConfig

REPO = Path(__file__).resolve().parents[2]
SECRET_PROGRAM = "def strlen(s):\n    import os\n    return os.environ.get('OPENAI_API_KEY', 'none')\n"
MEMORY_PROGRAM = "def strlen(s):\n    return len(bytearray(16 * 1024 ** 3))\n"

SCRIPT = f"""
import asyncio, json, sys
from koderz.datasets.loaders import load_dataset
from koderz.sandbox.sandbox import Sandbox
async def main():
    problem = {{p.task_id: p for p in load_dataset("humaneval")}}["HumanEval/23"]
    sandbox = Sandbox()
    verdicts = [await sandbox.evaluate(problem, program)
                for program in (problem.reference_program, {SECRET_PROGRAM!r}, {MEMORY_PROGRAM!r})]
    print(json.dumps([v.to_dict() for v in verdicts]))
asyncio.run(main())
"""


async def test_isolate_false_runs_on_limits(humaneval, uid_base, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-fallback")
    sandbox = Sandbox(SandboxConfig(isolate=False, uid_base=uid_base))
    problem = humaneval["HumanEval/23"]
    ok = await sandbox.evaluate(problem, problem.reference_program)
    assert ok.passed
    assert ok.isolation["network"] == "shared" and ok.isolation["filesystem"] == "shared"
    secret = await sandbox.evaluate(problem, SECRET_PROGRAM)
    assert not secret.passed and secret.got == "'none'"
    memory = await sandbox.evaluate(problem, MEMORY_PROGRAM)
    assert memory.status == "memory"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_root_without_capabilities_falls_back(tmp_path) -> None:
    """Root in a locked-down container: no CAP_SYS_ADMIN (no unshare), no CAP_SETUID."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin"),
        "OPENAI_API_KEY": "sk-fake-nocaps",
        "PYTHONPATH": str(REPO),
        "HOME": str(tmp_path),
    }
    if os.environ.get("KODERZ_CACHE_DIR"):
        env["KODERZ_CACHE_DIR"] = os.environ["KODERZ_CACHE_DIR"]
    else:
        env["XDG_CACHE_HOME"] = str(Path.home() / ".cache")
    done = subprocess.run(
        ["setpriv", "--inh-caps=-all", "--bounding-set=-all", sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    ok, secret, memory = json.loads(done.stdout.strip().splitlines()[-1])
    assert ok["passed"]
    assert ok["isolation"]["network"] == "shared" and "not permitted" in ok["isolation"]["note"]
    # no capability to unshare, and mapping uid 0 into a user namespace needs CAP_SETFCAP
    assert ok["isolation"]["mechanism"] == "limits only"
    assert "user namespaces: containment failed" in ok["isolation"]["note"]
    assert "install bubblewrap" in ok["isolation"]["hint"]
    assert ok["isolation"]["user"].startswith("unchanged")
    assert not secret["passed"] and secret["got"] == "'none'"
    assert memory["status"] == "memory"


async def test_fresh_interpreter_per_attempt_without_fork_server(humaneval, uid_base) -> None:
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base, fork_server=False))
    problems = list(humaneval.values())[:12]
    verdicts = [await sandbox.evaluate(p, p.reference_program) for p in problems]
    assert all(v.passed for v in verdicts)


async def test_runner_survives_fork_server_death(humaneval, uid_base) -> None:
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base))
    problem = humaneval["HumanEval/23"]
    assert (await sandbox.evaluate(problem, problem.reference_program)).passed
    zygote = sandbox._zygote
    assert zygote is not None and zygote.alive
    zygote._popen.kill()
    await asyncio.to_thread(zygote._popen.wait)
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
    print("ready", flush=True)
    await sandbox.evaluate(problem, "import time\\ndef strlen(s):\\n    time.sleep(600)\\n")
asyncio.run(main())
"""


@pytest.mark.parametrize("fork_server", [True, False])
def test_attempts_die_with_a_killed_koderz(fork_server, uid_base, leftovers, tmp_path) -> None:
    """koderz SIGKILLed mid-attempt (no cleanup runs): its attempts must not live on."""
    import signal
    import time

    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp_path))  # its attempt dirs stay in tmp_path
    proc = subprocess.Popen(
        [sys.executable, "-c", SLEEPER_SCRIPT % (uid_base, fork_server)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdout.readline().strip() == "ready"
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
