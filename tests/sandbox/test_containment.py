"""Containment: one memory budget per attempt, only the standard library inside, no channel
between attempts, each mechanism (root_namespaces, user_namespaces, bubblewrap) against
the exploits only containment stops, and the cgroups koderz creates are all removed (a slot's
cgroup is handed from attempt to attempt while it is left empty)."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import uuid
from pathlib import Path

import pytest

from koderz.sandbox.cgroups import CgroupBudget, own_hierarchies
from koderz.sandbox.mechanism import Mechanism
from koderz.sandbox.sandbox import Sandbox, SandboxConfig
from tests.support.escapes import cheat, data_files, escapes

REPO = Path(__file__).resolve().parents[2]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="forcing each mechanism needs root")
MECHANISMS = [
    Mechanism.ROOT_NAMESPACES,
    Mechanism.USER_NAMESPACES,
    pytest.param(
        Mechanism.BUBBLEWRAP, marks=pytest.mark.skipif(not shutil.which("bwrap"), reason="bwrap not installed")
    ),
]


def _strlen(body: str, prelude: str = "") -> str:
    """A HumanEval/23 ``strlen`` that runs ``body`` once (first call), then answers ``len(s)``."""
    indented = "\n".join("        " + line for line in body.strip("\n").splitlines())
    return f"{prelude}\nSTATE = []\ndef strlen(s):\n    if not STATE:\n        STATE.append(1)\n{indented}\n    return len(s)\n"


# ----------------------------------------------------------------------------- memory


HOLD = """
import os, time
ready_r, ready_w = os.pipe()
for _ in range({children}):
    if os.fork() == 0:
        block = bytearray({mb} * 1024 * 1024)
        os.write(ready_w, b"x")
        time.sleep(60)
        os._exit(0)
block = bytearray({mb} * 1024 * 1024)
got = 0
while got < {children}:  # every process holds its share at the same time
    got += len(os.read(ready_r, {children}))
"""


@pytest.fixture
def budget_sandbox(uid_base):
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base, memory_mb=1024))
    if not sandbox.budget.active:
        sandbox.close()
        pytest.skip(f"no memory cgroup here: {sandbox.budget.reason}")
    yield sandbox
    sandbox.close()


async def test_one_memory_budget_across_an_attempts_processes(budget_sandbox, humaneval, leftovers) -> None:
    """4 processes x 400 MB under a 1 GiB budget: each is under its rlimit, together they are not."""
    problem = humaneval["HumanEval/23"]
    over = await budget_sandbox.evaluate(problem, _strlen(HOLD.format(children=3, mb=400)))
    assert budget_sandbox.budget.memory in ("cgroup v1 1024 MB", "cgroup v2 1024 MB")
    assert over.status == "memory"
    assert over.error == f"memory limit exceeded ({budget_sandbox.budget.memory} per attempt)"
    assert over.isolation["memory"] == budget_sandbox.budget.memory
    assert leftovers() == []


async def test_memory_within_the_budget_passes(budget_sandbox, humaneval) -> None:
    problem = humaneval["HumanEval/23"]
    under = await budget_sandbox.evaluate(problem, _strlen(HOLD.format(children=1, mb=300)))
    assert under.passed, under.feedback()
    assert under.isolation["memory"].startswith("cgroup v") and under.isolation["memory"].endswith(" 1024 MB")


async def test_pids_limit_counts_the_whole_attempt(budget_sandbox, humaneval) -> None:
    """20 processes at once where 16 are allowed: the 17th fork fails inside the attempt."""
    if not budget_sandbox.budget.pids.startswith("cgroup"):
        pytest.skip("no pids cgroup here")
    program = _strlen(
        """
import os, time
made = 0
try:
    for _ in range(20):
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        made += 1
except OSError:
    return made
""",
    )
    verdict = await budget_sandbox.evaluate(humaneval["HumanEval/23"], program)
    # 16 processes in all: the child itself, the waiter outside its PID namespace, 14 forks
    assert (verdict.status, verdict.got) == ("failed", "14")
    assert verdict.isolation["processes"] == budget_sandbox.budget.pids


def _attempt_cgroups(run: Path) -> list[Path]:
    return [p for p in run.iterdir() if p.is_dir()]


async def test_each_slot_keeps_one_empty_cgroup_and_close_removes_them(budget_sandbox, humaneval) -> None:
    runs = budget_sandbox.budget.run_paths
    problem = humaneval["HumanEval/23"]
    verdicts = await asyncio.gather(*(budget_sandbox.evaluate(problem, problem.reference_program) for _ in range(5)))
    assert all(v.passed for v in verdicts)
    await budget_sandbox.drain()  # each attempt's teardown runs after its verdict
    for run in runs:
        kept = _attempt_cgroups(run)
        assert 1 <= len(kept) <= budget_sandbox.max_processes  # one per slot, handed from attempt to attempt
        assert all((cgroup / "cgroup.procs").read_text() == "" for cgroup in kept)
    budget_sandbox.close()
    assert not any(run.exists() for run in runs)


BURN = """
import time
started = time.process_time()
while time.process_time() - started < 1.2:
    pass
"""


async def test_a_slots_next_attempt_counts_cpu_time_and_oom_kills_from_its_own_start(uid_base, humaneval) -> None:
    """One slot, so every attempt runs in the same cgroup: two attempts of 1.2 s of CPU time each
    under a limit of 2 s both pass, and a wrong answer after an attempt the kernel OOM-killed has
    failed (it did not run out of memory)."""
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base, max_processes=1, cpu_floor=1.0))
    try:
        if not sandbox.budget.active:
            pytest.skip(f"no memory cgroup here: {sandbox.budget.reason}")
        problem = humaneval["HumanEval/23"]
        assert math.ceil(sandbox.config.cpu_floor + sandbox.config.cpu_factor * problem.reference_seconds) == 2
        for _ in range(2):
            burnt = await sandbox.evaluate(problem, _strlen(BURN))
            assert burnt.passed, burnt.feedback()
        over = await sandbox.evaluate(problem, _strlen(HOLD.format(children=3, mb=400)))
        assert over.status == "memory"
        wrong = await sandbox.evaluate(problem, "def strlen(s):\n    return 0\n")
        assert wrong.status == "failed"
        await sandbox.drain()
        assert [len(_attempt_cgroups(run)) for run in sandbox.budget.run_paths] == [1] * len(sandbox.budget.run_paths)
    finally:
        sandbox.close()


CRASHING_RUN = """
import asyncio, sys
from koderz.datasets.loaders import load_dataset
from koderz.sandbox.sandbox import Sandbox, SandboxConfig
async def main():
    problem = {p.task_id: p for p in load_dataset("humaneval")}["HumanEval/23"]
    sandbox = Sandbox(SandboxConfig(uid_base=%d))
    print(" ".join(str(run) for run in sandbox.budget.run_paths), flush=True)
    await sandbox.evaluate(problem, "import time\\ndef strlen(s):\\n    time.sleep(600)\\n")
asyncio.run(main())
"""


def test_a_crashed_runs_cgroups_are_swept_at_the_next_start(uid_base, tmp_path, leftovers) -> None:
    if not CgroupBudget(64, 4).active:
        pytest.skip("no memory cgroup here")
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_RUN % uid_base],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp_path)),  # its attempt dirs stay in tmp_path
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    runs = [Path(p) for p in proc.stdout.readline().split()]
    assert runs, "the run printed no cgroup"
    deadline = time.monotonic() + 30
    while not any(p.is_dir() for run in runs for p in run.iterdir()) and time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before its attempt started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no cleanup runs in the crashed process
    proc.wait()
    assert all(run.exists() for run in runs)
    CgroupBudget(64, 4).close()  # the next start sweeps
    assert not any(run.exists() for run in runs)
    deadline = time.monotonic() + 10
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftovers() == []


def test_own_cgroup_is_found_for_v1_and_v2_layouts() -> None:
    """Parsing only (fake /proc texts): where each hierarchy's own cgroup is."""
    v1_cgroup = "8:pids:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/\n0::/\n"
    v1_mounts = (
        "31 25 0:27 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n"
        "35 25 0:31 / /sys/fs/cgroup/pids rw,relatime shared:13 - cgroup cgroup rw,pids\n"
        "36 25 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct\n"
        "37 25 0:33 / /sys/fs/cgroup/unified rw,relatime shared:15 - cgroup2 cgroup2 rw\n"
    )
    found = {(h.version, h.controllers, str(h.own)) for h in own_hierarchies(v1_cgroup, v1_mounts)}
    assert found == {
        (1, ("pids",), "/sys/fs/cgroup/pids"),
        (1, ("memory",), "/sys/fs/cgroup/memory/process_api/abc"),
        (1, ("cpu", "cpuacct"), "/sys/fs/cgroup/cpu,cpuacct"),
        (2, ("memory", "pids", "cpu", "cpuacct"), "/sys/fs/cgroup/unified"),
    }
    v2 = own_hierarchies(
        "0::/user.slice/user-1000.slice/session-2.scope\n",
        "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
    )
    assert [(h.version, str(h.own)) for h in v2] == [(2, "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope")]


# ----------------------------------------------------------------------------- stdlib only


def _site_dirs() -> list[str]:
    """Every place a third-party package of this interpreter or the system could live."""
    base = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})
    places = {base["purelib"], base["platlib"], sysconfig.get_paths()["purelib"], "/usr/lib/python3/dist-packages"}
    places |= {str(p) for p in Path("/usr/local/lib").glob("python3*/dist-packages")}
    return sorted(p for p in places if os.path.isdir(p))


@pytest.fixture
def base_site_module():
    """A tiny module in the *base* interpreter's site-packages (removed afterwards)."""
    purelib = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})["purelib"]
    name = "koderz_probe_" + uuid.uuid4().hex[:8]
    path = Path(purelib) / f"{name}.py"
    try:
        path.write_text("VISIBLE = True\n")
    except OSError as exc:
        pytest.skip(f"cannot write into {purelib}: {exc}")
    yield name
    path.unlink()


STDLIB_ONLY = """
import importlib, os, sys
listed, imported = [], []
for place in {places!r}:
    sys.path.append(place)
    try:
        listed += [place + '/' + name for name in os.listdir(place)]
    except OSError:
        pass
for module in {modules!r}:
    try:
        importlib.import_module(module)
        imported.append('imported ' + module)
    except ImportError:
        pass
if listed or imported:
    return (imported + listed)[:5]
"""


@pytest.mark.parametrize("mechanism", MECHANISMS)
@needs_root
async def test_only_the_standard_library_is_inside(mechanism, base_site_module, humaneval, uid_base) -> None:
    """koderz runs from a venv over a non-system interpreter: neither that interpreter's
    site-packages nor the system's dist-packages is visible, even when put on sys.path."""
    modules = [base_site_module, "yaml", "numpy", "pip", "koderz"]
    program = _strlen(STDLIB_ONLY.format(places=_site_dirs(), modules=modules))
    problem = humaneval["HumanEval/23"]
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base, containment=mechanism))
    try:
        verdict = await sandbox.evaluate(problem, program)
    finally:
        sandbox.close()
    assert verdict.passed, verdict.feedback()
    # the same program, run by the same interpreter outside the sandbox, sees the module: the check can fail
    control = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-I", "-S", "-c", program + "\nprint(strlen(''))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert f"imported {base_site_module}" in control.stdout, control.stderr


# ----------------------------------------------------------------------------- no channel

CHANNEL_PRELUDE = """
import ctypes, os, socket, time
LIBC = ctypes.CDLL(None, use_errno=True)
ADD_KEY, KEYCTL = {{"x86_64": (248, 250), "aarch64": (217, 219)}}[os.uname().machine]
RINGS = {{"user": -4, "user-session": -5, "session": -3}}
NAME = "{marker}"
IPC_KEY = {ipc_key}


def persistent():
    return LIBC.syscall(KEYCTL, 22, -1, -3)  # KEYCTL_GET_PERSISTENT, linked into the session keyring


def visible():
    found = []
    for ring, spec in [*RINGS.items(), ("persistent", persistent())]:
        if spec != -1 and LIBC.syscall(KEYCTL, 10, spec, b"user", (NAME + ring).encode(), 0) > 0:
            found.append(ring)
    if LIBC.shmget(IPC_KEY, 0, 0) >= 0:
        found.append("sysv shm")
    if LIBC.msgget(IPC_KEY, 0) >= 0:
        found.append("sysv msg")
    for path in ("/tmp/" + NAME, "/dev/shm/" + NAME):
        if os.path.exists(path):
            found.append(path)
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.connect("\\0" + NAME)
            found.append("abstract socket")
    except OSError:
        pass
    return found


def write():
    written = []
    for ring, spec in [*RINGS.items(), ("persistent", persistent())]:
        if spec != -1 and LIBC.syscall(ADD_KEY, b"user", (NAME + ring).encode(), b"left", 4, spec) > 0:
            written.append(ring)
    if LIBC.shmget(IPC_KEY, 4096, 0o1666) >= 0:
        written.append("sysv shm")
    if LIBC.msgget(IPC_KEY, 0o1666) >= 0:
        written.append("sysv msg")
    for path in ("/tmp/" + NAME, "/dev/shm/" + NAME):
        try:
            with open(path, "w") as handle:
                handle.write("left")
            written.append(path)
        except OSError:
            pass
    server = socket.socket(socket.AF_UNIX)
    server.bind("\\0" + NAME)
    server.listen(1)
    if os.fork() == 0:  # keeps the socket open after the attempt answers
        time.sleep(60)
        os._exit(0)
    written.append("abstract socket")
    return written
"""


def _channel_programs(marker: str) -> tuple[str, str]:
    if os.uname().machine not in ("x86_64", "aarch64"):
        pytest.skip("syscall numbers for keyctl known for x86_64 and aarch64 only")
    prelude = CHANNEL_PRELUDE.format(marker=marker, ipc_key=0x4B5A0000 + os.getpid() % 65536)
    writer = prelude + "\ndef strlen(s):\n    written = write()\n    return [written, visible()]\n"
    reader = prelude + "\ndef strlen(s):\n    return visible()\n"
    return writer, reader


@pytest.mark.parametrize("mechanism", MECHANISMS)
@needs_root
async def test_no_channel_between_attempts(mechanism, humaneval, uid_base, leftovers) -> None:
    """An attempt leaves keys in every keyring it reaches, SysV IPC objects, files in /tmp
    and /dev/shm and a listening abstract socket; the next attempt in the same slot, and
    the first one of the next run, find nothing."""
    marker = "koderz-" + uuid.uuid4().hex[:10]
    writer, reader = _channel_programs(marker)
    problem = humaneval["HumanEval/23"]
    config = SandboxConfig(uid_base=uid_base, max_processes=1, containment=mechanism)
    sandbox = Sandbox(config)
    try:
        wrote = await sandbox.evaluate(problem, writer)
        same_run = await sandbox.evaluate(problem, reader)
    finally:
        sandbox.close()
    next_run = Sandbox(config)
    try:
        later = await next_run.evaluate(problem, reader)
    finally:
        next_run.close()
    written = ["user", "user-session", "session", "persistent", "sysv shm", "sysv msg", f"/tmp/{marker}"]
    written.append("abstract socket")  # /dev/shm does not exist inside
    assert wrote.got == repr([written, written])  # every write held, and was visible to the writer itself
    assert (same_run.status, same_run.got) == ("failed", "[]")
    assert (later.status, later.got) == ("failed", "[]")
    assert leftovers() == []


# ----------------------------------------------------------------------------- mechanisms


@pytest.mark.parametrize("mechanism", MECHANISMS)
@needs_root
async def test_each_mechanism_contains_the_escapes(mechanism, humaneval, uid_base, listener, monkeypatch) -> None:
    port, accepted = listener
    marker = "koderz-esc-" + uuid.uuid4().hex[:8]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-" + marker)
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base, containment=mechanism))
    problems = [humaneval[f"HumanEval/{i}"] for i in (0, 2, 7, 12, 23, 53, 101, 163)]
    programs = escapes("strlen", marker, port, str(Path.home()))
    try:
        cheats = await asyncio.gather(*(sandbox.evaluate(p, cheat(p.entry_point, data_files())) for p in problems))
        verdicts = dict(
            zip(
                programs,
                await asyncio.gather(*(sandbox.evaluate(humaneval["HumanEval/23"], p) for p in programs.values())),
                strict=True,
            )
        )
    finally:
        sandbox.close()
    assert [v.got for v in cheats] == ["'no dataset readable'"] * len(problems)
    assert verdicts["read_package"].got == "'FileNotFoundError'"
    assert verdicts["loopback_network"].got in ("'OSError'", "'ConnectionRefusedError'")
    assert verdicts["env_secrets"].got == "'no key|HOME,LANG,PATH,PYTHONHASHSEED,TMPDIR'"
    assert verdicts["daemon"].got == "'daemon started'"
    assert accepted == []
    traces = (f"/tmp/{marker}", f"/tmp/{marker}-daemon", Path.home() / marker)
    assert not await asyncio.to_thread(lambda: any(os.path.exists(p) for p in traces))
    assert {v.isolation["mechanism"] for v in [*cheats, *verdicts.values()]} == {mechanism}
    assert {v.isolation["filesystem"] for v in cheats} == {"private root"}
