"""``await Sandbox.evaluate(problem, program) -> Verdict``: contained runs, trusted verdicts.

Each attempt is a fresh process (forked by the zygote, or a fresh ``python -I -S``)
running ``child.py``: own session and process group, its own cgroup (one memory budget
across its processes, where the machine offers one), private namespaces and a minimal
root (as root, in a user namespace, or built by bwrap: ``mechanism`` says which this
machine allows), resource limits, an unprivileged uid of its own as root (one per
concurrent slot), a scrubbed environment, stdin closed, output capped. The child
streams plain outputs; ``judge`` decides here.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import marshal
import math
import os
import shutil
import signal
import site
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, cast

from koderz.datasets.groundtruth import cache_dir
from koderz.datasets.problem import Problem
from koderz.errors import SandboxError
from koderz.sandbox.cgroups import AttemptCgroup, CgroupBudget
from koderz.sandbox.checkenv import assemble, preamble_of
from koderz.sandbox.forkserver import ForkedProcess, ForkServer
from koderz.sandbox.judge import Collector, judge
from koderz.sandbox.judge import error_status as _error_status
from koderz.sandbox.mechanism import Containment, bwrap_command, candidates, choose, python_command
from koderz.sandbox.verdict import Verdict
from koderz.sandbox.wire import MAX_OUTPUT

log = logging.getLogger(__name__)

CHILD_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
ROOT_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc")
MAX_LINE = MAX_OUTPUT + 4096
DRAIN_SECONDS = 2.0
TIMEOUT_EXIT = 124
ENCODE_SECONDS_PER_CHAR = 1e-7
SEND_LIMIT = 1 << 20  # longer answers travel as a digest (EvalPlus datasets only)
OOM_POLL_SECONDS = 0.05
SITE_PATTERNS = (  # relative to each directory bound into the child's root
    "lib*/python*/*-packages",
    "local/lib*/python*/*-packages",
    "python*/*-packages",
    "lib*/python*/ensurepip/_bundled",
    "python*/ensurepip/_bundled",
    "share/python-wheels",
)
_CHOSEN: dict[tuple[object, ...], Containment] = {}  # per process: the machine does not change


class AttemptProcess(Protocol):
    """What ``_run`` uses of an attempt process: a fork server's or an asyncio subprocess."""

    pid: int
    stdin: asyncio.StreamWriter
    stdout: asyncio.StreamReader
    stderr: asyncio.StreamReader

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def send_signal(self, signum: int) -> None: ...


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and switches. CPU time per attempt is ``cpu_floor + cpu_factor x`` the
    canonical solution's own CPU time on the same inputs; wall clock is only a backstop."""

    max_processes: int = 0  # 0 = number of CPUs
    isolate: bool = True
    cpu_floor: float = 3.0
    cpu_factor: float = 10.0
    wall_factor: float = 3.0
    wall_slack: float = 5.0
    memory_mb: int = 1024
    processes: int = 16
    open_files: int = 64
    file_mb: int = 16
    tmp_mb: int = 32
    output_kb: int = 64
    uid_base: int = 3_000_000
    fork_server: bool = True  # fork attempts from a preloaded zygote instead of starting python each time
    containment: str = "auto"  # or one of mechanism.MECHANISMS, to insist on that one


def _child_source() -> str:
    package = resources.files("koderz.sandbox")
    return (package / "wire.py").read_text() + "\n" + (package / "child.py").read_text()


def _root_paths() -> list[str]:
    """What the child's root holds: system directories and the base interpreter's lib and binary."""
    stdlib = os.path.dirname(os.__file__)
    extensions = sysconfig.get_config_var("DESTSHARED") or stdlib
    python = [os.path.realpath(p) for p in (sys.executable, stdlib, extensions)]
    python.insert(0, os.path.join(os.path.realpath(sys.base_prefix), "lib"))  # libpython, conda's libraries
    kept: list[str] = []
    for path in python:
        if not any(path == r or path.startswith(r + "/") for r in [*ROOT_PATHS, *kept]):
            kept.append(path)
    return [*ROOT_PATHS, *kept]


def _hidden_paths(root_paths: list[str]) -> list[str]:
    """Paths the child must not see: every site-packages/dist-packages under its root (whatever
    the interpreter layout: system, pyenv, venv, conda, uv), bundled wheels, koderz itself,
    its caches, the cwd."""
    stdlib = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")}
    candidates = set(site.getsitepackages()) | {site.getusersitepackages(), str(cache_dir()), os.getcwd()}
    candidates |= set(site.getsitepackages([sys.base_prefix, sys.base_exec_prefix]))
    candidates |= {p for p in sys.path if p and os.path.realpath(p) not in stdlib and "lib-dynload" not in p}
    candidates.add(str(Path(__file__).resolve().parents[2]))
    for base in (Path(p) for p in root_paths if os.path.isdir(p) and not os.path.islink(p)):
        for pattern in SITE_PATTERNS:
            candidates |= {str(p) for p in base.glob(pattern)}
    hidden = {os.path.realpath(p) for p in candidates if p}
    # never a directory the root is made of (koderz started from / or /usr would hide it all)
    return sorted(p for p in hidden if not any(r == p or r.startswith(p.rstrip("/") + "/") for r in root_paths))


class SlotPool:
    """Process slots (each with its own uid); waiting attempts with the costliest reference
    solution go first, so a batch does not end on a long straggler."""

    def __init__(self, size: int) -> None:
        self._free = list(range(size))
        self._waiting: list[tuple[float, int, asyncio.Future[int]]] = []
        self._order = itertools.count()

    async def acquire(self, cost: float) -> int:
        if self._free and not self._waiting:
            return self._free.pop()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (-cost, next(self._order), future))
        self._hand_out()
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(future.result())
            raise

    def release(self, slot: int) -> None:
        self._free.append(slot)
        self._hand_out()

    def _hand_out(self) -> None:
        while self._free and self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(self._free.pop())


class Sandbox:
    """Runs candidate programs; at most ``max_processes`` at once, whatever the callers do."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        slots = self.config.max_processes or os.cpu_count() or 1
        self._slots = SlotPool(slots)
        self._source = _child_source()
        self._root_paths = _root_paths()
        self._hide = _hidden_paths(self._root_paths)
        self._zygote: ForkServer | None = None
        self._zygote_loop: asyncio.AbstractEventLoop | None = None
        self._zygote_start: asyncio.Task[None] | None = None
        self._root = os.geteuid() == 0
        self._mechanisms = candidates(self._root, self.config.isolate, self.config.containment)
        self._probing: asyncio.Task[Containment] | None = None
        self._chosen: Containment | None = None
        self._budget = CgroupBudget(self.config.memory_mb, self.config.processes)
        if not self._budget.active:
            log.info("sandbox: memory budget per process (%s)", self._budget.reason)

    @property
    def max_processes(self) -> int:
        return self.config.max_processes or os.cpu_count() or 1

    @staticmethod
    def _inputs(problem: Problem) -> list[bytes]:
        """Each input marshalled on its own (the child unmarshals a fresh copy per call)."""
        blobs = getattr(problem.inputs, "blobs", None)
        if blobs is not None:
            return blobs
        try:
            return [marshal.dumps(tuple(args)) for args in problem.inputs]
        except ValueError as exc:
            raise SandboxError(f"{problem.task_id}: an input cannot be sent to the sandbox: {exc}") from exc

    def _limits(self, problem: Problem) -> tuple[dict[str, int], float]:
        limits = self._limits_for(problem.reference_seconds)
        return limits, self.config.wall_factor * limits["cpu_seconds"] + self.config.wall_slack

    @property
    def containment(self) -> Containment | None:
        """The mechanism in use, once the first attempt has found it."""
        return self._chosen

    async def _containment(self) -> Containment:
        """The strongest containment that works here, probed once per process and settings."""
        if self._chosen is not None:
            return self._chosen
        key = (self._root, tuple(self._mechanisms), tuple(self._root_paths), tuple(self._hide))
        if key not in _CHOSEN:
            loop = asyncio.get_running_loop()
            if self._probing is None or self._probing.get_loop() is not loop:
                self._probing = loop.create_task(choose(self._mechanisms, self._command, self._probe_job))
            chosen = await asyncio.shield(self._probing)
            if key not in _CHOSEN:
                _CHOSEN[key] = chosen
                (log.info if chosen.full else log.warning)("%s", chosen.summary())
        self._chosen = _CHOSEN[key]
        return self._chosen

    def _command(self, mechanism: str, cgroups: list[str] | None = None) -> list[str]:
        """A fresh child process for ``mechanism`` (bwrap wraps the interpreter; the attempt's
        cgroup directories are bound in so that the child can join them)."""
        python = python_command(self._source)
        if mechanism == "bubblewrap":
            return bwrap_command(self._root_paths, self._hide, self.config.tmp_mb, cgroups or []) + python
        return python

    def _probe_job(self, mechanism: str, workdir: str) -> bytes:
        limits = {**self._limits_for(self.config.cpu_floor), "cpu_seconds": math.ceil(self.config.cpu_floor)}
        return marshal.dumps({**self._setup(mechanism, workdir, 0, None, limits), "probe": True, "send_limit": 0})

    def _limits_for(self, reference_seconds: float) -> dict[str, int]:
        cfg = self.config
        return {
            "cpu_seconds": math.ceil(cfg.cpu_floor + cfg.cpu_factor * reference_seconds),
            "memory_mb": cfg.memory_mb,
            "processes": cfg.processes,
            "open_files": cfg.open_files,
            "file_mb": cfg.file_mb,
            "tmp_mb": cfg.tmp_mb,
        }

    def _setup(
        self, mechanism: str, workdir: str, slot: int, cgroup: AttemptCgroup | None, limits: dict[str, int]
    ) -> dict[str, object]:
        """The containment part of a job: what the child enters before it runs anything."""
        slot_uid = self._root and mechanism in ("root namespaces", "limits only")
        return {
            "mechanism": mechanism,
            "limits": limits,
            "env": CHILD_ENV,
            "uid": self.config.uid_base + slot if slot_uid else None,
            "workdir": workdir,
            "root_paths": self._root_paths,
            "hide": self._hide,
            "cgroups": cgroup.procs if cgroup else [],
            "budget": {"memory": self._budget.memory, "processes": self._budget.pids},
        }

    def _job(
        self, problem: Problem, program: str, workdir: str, slot: int, mechanism: str, cgroup: AttemptCgroup | None
    ) -> bytes:
        limits, _ = self._limits(problem)
        return marshal.dumps(
            {
                **self._setup(mechanism, workdir, slot, cgroup, limits),
                "program": assemble(preamble_of(problem.prompt, problem.entry_point), program),
                "entry_point": problem.entry_point,
                "send_limit": MAX_OUTPUT if problem.dataset == "humaneval" else SEND_LIMIT,
                "inputs": self._inputs(problem),
            }
        )

    async def evaluate(self, problem: Problem, program: str) -> Verdict:
        """Run ``program`` on ``problem``'s tests in a fresh contained process."""
        containment = await self._containment()
        mechanism = containment.mechanism
        slot = await self._slots.acquire(_cost(problem))
        workdir = tempfile.mkdtemp(prefix="koderz-attempt-")
        started = time.perf_counter()
        cgroup = None
        try:
            if self._root:
                try:
                    os.chown(workdir, self.config.uid_base + slot, self.config.uid_base + slot)
                except PermissionError:  # root without CAP_CHOWN: the child stays uid 0
                    os.chmod(workdir, 0o777)
            cgroup = self._attempt_cgroup()
            job = self._job(problem, program, workdir, slot, mechanism, cgroup)
            results, output, cut_short = await self._run(problem, job, workdir, mechanism, cgroup)
            out_of_memory = cgroup is not None and cgroup.oom_killed()
        finally:
            self._slots.release(slot)
            await asyncio.to_thread(shutil.rmtree, workdir, True)
            if cgroup is not None:
                await asyncio.to_thread(_remove_cgroup, cgroup)
        verdict = self._decide(problem, results, output, cut_short)
        if out_of_memory and not verdict.passed:  # the kernel killed one of its processes at the budget
            verdict = _with(
                verdict, status="memory", error=f"memory limit exceeded ({self._budget.memory} per attempt)"
            )
        isolation = {**verdict.isolation, **containment.report()} if verdict.isolation else {}
        return _with(verdict, duration=time.perf_counter() - started, isolation=isolation)

    def _attempt_cgroup(self) -> AttemptCgroup | None:
        """The attempt's own cgroup; on a failure the attempt runs on its rlimits (and says so)."""
        try:
            return self._budget.attempt()
        except OSError as exc:
            log.warning("sandbox: no cgroup for this attempt (%s); its memory limit is per process", exc)
            return None

    async def _run(
        self, problem: Problem, job: bytes, workdir: str, mechanism: str, cgroup: AttemptCgroup | None
    ) -> tuple[Collector, str, str | None]:
        _, wall = self._limits(problem)
        proc = await self._spawn(workdir, mechanism, cgroup)
        results = Collector(problem)
        captured = bytearray()
        cap = self.config.output_kb * 1024
        violation: list[str] = []

        async def feed() -> None:
            try:
                proc.stdin.write(job)
                await proc.stdin.drain()
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass

        async def read_results() -> None:
            while True:
                try:
                    line = await proc.stdout.readline()
                    if not line:
                        return
                    results.feed(line)
                except ValueError as exc:  # ProtocolError, or a line beyond the limit
                    violation.append(str(exc))
                    return

        async def read_output() -> None:
            while chunk := await proc.stderr.read(65536):
                if len(captured) < cap:
                    captured.extend(chunk[: cap - len(captured)])

        cut_short: str | None = None
        tasks: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(c) for c in (feed(), read_results(), read_output(), proc.wait())
        ]
        if cgroup is not None:  # the waiter outside the PID namespace is spared: it reaps PID 1
            waiter = proc.pid if mechanism in ("root namespaces", "user namespaces") else None
            tasks.append(asyncio.ensure_future(_end_at_oom(cgroup, waiter)))
        reader, exited = tasks[1], tasks[3]
        try:
            done, _ = await asyncio.wait([reader, exited], timeout=wall, return_when=asyncio.FIRST_COMPLETED)
            if exited in done or (reader in done and not violation):
                # results are complete once the child exits; a leftover holding the pipe gets DRAIN_SECONDS
                await asyncio.wait([reader, exited], timeout=wall if exited not in done else DRAIN_SECONDS)
                cut_short = _status_from_exit(exited.result()) if exited.done() else "timeout"
            elif not done:
                cut_short = "timeout"
        finally:
            if proc.returncode is None and results.isolation.get("pid") == "namespace":
                # the trusted waiter kills and reaps the namespace's PID 1 on SIGTERM, so
                # nothing is orphaned to the host's init as an unreaped zombie
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                await asyncio.wait([exited], timeout=DRAIN_SECONDS)
            _kill_group(proc.pid)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await proc.wait()
            if isinstance(proc, ForkedProcess):
                proc.close()
        if violation:
            results.violation = violation[0]
        return results, captured.decode("utf-8", "replace"), cut_short

    async def _spawn(self, workdir: str, mechanism: str, cgroup: AttemptCgroup | None = None) -> AttemptProcess:
        """A fresh attempt process: forked by the zygote when enabled, else a new interpreter
        (inside bwrap for ``bubblewrap``: each attempt needs namespaces of its own)."""
        if self.config.fork_server and mechanism != "bubblewrap":
            try:
                zygote = await self._fork_server()
                return await zygote.spawn()
            except (SandboxError, OSError) as exc:
                log.warning("sandbox fork server failed (%s); starting a fresh interpreter instead", exc)
                self._close_zygote()
        proc = await asyncio.create_subprocess_exec(
            *self._command(mechanism, cgroup.paths if cgroup else []),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=CHILD_ENV,
            cwd=workdir,
            start_new_session=True,
            limit=MAX_LINE,
        )
        return cast(AttemptProcess, proc)  # all three pipes were asked for

    async def _fork_server(self) -> ForkServer:
        """This loop's zygote, started once (concurrent callers share the start-up)."""
        loop = asyncio.get_running_loop()
        zygote, start = self._zygote, self._zygote_start
        if self._zygote_loop is not loop or zygote is None or start is None or (start.done() and not zygote.alive):
            self._close_zygote()
            zygote, self._zygote_loop = ForkServer(self._source, CHILD_ENV, MAX_LINE), loop
            start = loop.create_task(zygote.start())
            self._zygote, self._zygote_start = zygote, start
        await asyncio.shield(start)
        return zygote

    def _close_zygote(self) -> None:
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None

    def close(self) -> None:
        """Stop the fork server and remove the run's cgroups (both also happen when this process exits)."""
        self._close_zygote()
        self._budget.close()

    def _decide(self, problem: Problem, results: Collector, output: str, cut_short: str | None) -> Verdict:
        total = len(problem.inputs)
        isolation = results.isolation
        if results.violation:
            return Verdict(
                False,
                "error",
                0,
                total,
                error=f"harness protocol violated by the program: {results.violation}",
                output=output,
                isolation=isolation,
            )
        if results.load_error is not None:
            error = results.load_error
            return Verdict(
                False,
                _error_status(error.error or ""),
                0,
                total,
                error=error.error,
                traceback=error.traceback,
                output=output,
                isolation=isolation,
            )
        if not isolation:
            cut_short = cut_short or "killed"
            log.debug("sandbox child for %s died before setup; output: %s", problem.task_id, output[-500:])
        complete = results.count == total
        j = judge(problem, results, None if complete else (cut_short or "killed"))
        return Verdict(
            j.status == "passed",
            j.status,
            j.tests_passed,
            total,
            j.failing_input,
            j.expected,
            j.got,
            j.error,
            j.traceback,
            output,
            isolation=isolation,
        )


def _cost(problem: Problem) -> float:
    """Rough seconds an attempt takes: the reference's CPU time plus encoding its answers."""
    characters = getattr(problem.expected, "characters", None)
    return problem.reference_seconds + (ENCODE_SECONDS_PER_CHAR * characters() if characters else 0.0)


def _status_from_exit(code: int) -> str:
    """``cut_short`` for an exit code (see ``judge.stop_reason``); 124 is the child's CPU-limit code."""
    if code == TIMEOUT_EXIT:
        return "timeout"
    signum = -code if code < 0 else code - 128 if code > 128 else 0
    if signum == signal.SIGXCPU:
        return "timeout"
    if signum:
        try:
            return f"killed:{signal.Signals(signum).name}"
        except ValueError:
            return f"killed:signal {signum}"
    return f"exited:{code}"


async def _end_at_oom(cgroup: AttemptCgroup, spare: int | None) -> None:
    """Once the kernel OOM-kills one of an attempt's processes, kill the rest (cgroup v1 has no
    ``memory.oom.group``): the attempt is over, and ends as ``memory`` now, not at its time limit."""
    while True:  # a kernel counter: nothing to await but time
        await asyncio.sleep(OOM_POLL_SECONDS)
        if cgroup.oom_killed():
            cgroup.kill(spare)
            return


def _remove_cgroup(cgroup: AttemptCgroup) -> None:
    try:
        if leftovers := cgroup.remove():
            log.warning("sandbox: killed %d processes left in an attempt's cgroup", len(leftovers))
    except OSError as exc:
        log.warning("sandbox: could not remove an attempt's cgroup: %s", exc)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError as exc:  # pragma: no cover - only without privileges
        raise SandboxError(f"cannot kill attempt process group {pid}: {exc}") from exc


def _with(verdict: Verdict, **changes: Any) -> Verdict:
    from dataclasses import replace

    return replace(verdict, **changes)
