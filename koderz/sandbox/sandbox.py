"""``await Sandbox.evaluate(problem, program) -> Verdict``: contained runs, trusted verdicts.

Each attempt is a fresh process (forked by the zygote, or a fresh ``python -I -S``) running
``child.py``: own session and process group, its own cgroup (one memory budget across its
processes, where the machine offers one), private namespaces and a minimal root (as root, in a
user namespace, or built by bwrap: ``mechanism`` says which this machine allows), resource
limits, an unprivileged uid of its own as root (one per concurrent slot), a scrubbed
environment, stdin closed, output capped. The child streams plain answers down a pipe that
ends in a judge process (one of the judge server's pool, ``judge_server``, judging this
attempt alone within a CPU and memory budget of its own): the event loop never decodes a
candidate's answer, it only receives the judge's small verdict.
"""

from __future__ import annotations

import asyncio
import ctypes
import heapq
import itertools
import json
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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

from koderz.answers.checkenv import preamble_of
from koderz.datasets.calibration import workload_seconds
from koderz.datasets.groundtruth import cache_dir
from koderz.datasets.problem import Problem
from koderz.errors import SandboxError
from koderz.sandbox.cgroups import AttemptCgroup, CgroupBudget
from koderz.sandbox.forkserver import ForkedProcess, ForkServer, Preload, PreloadReport
from koderz.sandbox.judge import FAILED_LIMIT, AnswerLimits, Judgement
from koderz.sandbox.judge_client import JudgeJob, JudgeServer
from koderz.sandbox.judge_server import MEMORY_EXIT, OUT_OF_MEMORY
from koderz.sandbox.mechanism import (
    Containment,
    Mechanism,
    bwrap_command,
    candidates,
    choose,
    python_command,
    with_program,
)
from koderz.sandbox.stop import Measured, Stop, StopKind
from koderz.sandbox.verdict import Verdict
from koderz.sandbox.zygote import Zygote
from koderz.vocab import Detail, Status

log = logging.getLogger(__name__)
Attempt = asyncio.subprocess.Process | ForkedProcess

CHILD_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
ROOT_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc")
DRAIN_SECONDS = 2.0
TEARDOWN_SECONDS = 60.0  # a teardown still running then is logged and left to its thread
ENCODE_SECONDS_PER_CHAR = 1e-7
WATCH_SECONDS = 0.05  # how often the attempt's cgroup counters (CPU used, OOM kills) are read
PR_SET_DUMPABLE = 4
NOBODY_ENV: dict[str, str] = {}  # limits_only: the candidate gets an empty environment
SITE_PATTERNS = (  # relative to each directory bound into the child's root
    "lib*/python*/*-packages",
    "local/lib*/python*/*-packages",
    "python*/*-packages",
    "lib*/python*/ensurepip/_bundled",
    "python*/ensurepip/_bundled",
    "share/python-wheels",
)
_CHOSEN: dict[tuple[object, ...], Containment] = {}  # per process: the machine does not change
Helper = TypeVar("Helper", bound=Zygote)


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and switches. CPU time per attempt is ``cpu_floor + cpu_factor x`` the
    canonical solution's own CPU time on the same inputs; wall clock is only a backstop."""

    max_processes: int = 0  # 0 = number of CPUs
    isolate: bool = True
    cpu_floor: float = 3.0
    cpu_factor: float = 10.0
    # EvalPlus datasets: each input's own CPU budget, max(input_floor, input_factor x the canonical
    # solution's CPU time on it x the machine's slowness against where that was measured), as
    # EvalPlus's min_time_limit (1 s) and gt_time_limit_factor (4); 0 turns it off
    input_factor: float = 4.0
    input_floor: float = 1.0
    wall_factor: float = 3.0
    wall_slack: float = 5.0
    memory_mb: int = 1024
    processes: int = 16
    open_files: int = 64
    file_mb: int = 16
    tmp_mb: int = 32
    tmp_inodes: int = 4096  # files and directories the attempt's private /tmp may hold
    output_kb: int = 64
    uid_base: int = 3_000_000
    fork_server: bool = True  # fork attempts from a preloaded zygote instead of starting python each time
    containment: str = "auto"  # or a mechanism.Mechanism name, to insist on that one (limits_only: opt in)
    library_paths: tuple[str, ...] = ()  # bound read-only into the child's root (BigCodeBench's libraries)
    preload: tuple[str, ...] = ()  # modules (on library_paths) the fork server imports once for every attempt
    # what the trusted side accepts from one attempt, and what judging it may cost (docs/sandbox.md)
    line_kb: int = 16 * 1024  # EvalPlus datasets: longest answer sent in full; longer ones travel as a digest
    humaneval_line_kb: int = 64  # humaneval: longest answer (its check replay needs every answer in full)
    answer_mb: int = 512  # result bytes of one attempt in all
    max_depth: int = 100  # nesting levels of one answer
    max_items: int = 2_000_000  # values in one answer (containers' items, dict keys and values)
    max_int_digits: int = 1_100_000  # decimal digits of one int in an answer
    judge_cpu_seconds: int = 10  # CPU time the judge may spend decoding and comparing one attempt's answers
    judge_memory_mb: int = 512  # memory it may take for that, beyond its size when it starts the attempt
    # FIRST_FAILURE: the judge decides at the first failing input and the attempt is stopped there
    # (EvalPlus datasets; humaneval's check replay always reads every answer). Same verdict either way.
    detail: Detail = Detail.FULL


def child_source(fork_server: bool = False) -> str:
    """The attempt's program (answers/wire.py + child.py), run by ``python -I -S -B -c``; the fork
    server's also holds framing.py (its messages; an attempt started fresh never imports it)."""
    framing = [resources.files("koderz") / "framing.py"] if fork_server else []
    files = [resources.files("koderz.answers") / "wire.py", *framing, resources.files("koderz.sandbox") / "child.py"]
    return "\n".join(file.read_text() for file in files)


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


@dataclass(frozen=True)
class HelperPids:
    """A sandbox's trusted helper processes (None: not running)."""

    judge_server: int | None
    fork_server: int | None


class PerLoop(Generic[Helper]):
    """A helper process of the running event loop: started once (concurrent callers share the
    start-up), started anew when it has died or the loop is another one."""

    def __init__(self, make: Callable[[], Helper]) -> None:
        self._make = make
        self.running: Helper | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.running.pid if self.running is not None else None

    def starting(self) -> tuple[Helper, asyncio.Task[None]]:
        """The helper and its start-up (begun now unless it runs or is starting)."""
        loop = asyncio.get_running_loop()
        if (
            self._loop is not loop
            or self.running is None
            or self._start is None
            or (self._start.done() and not self.running.alive)
        ):
            self.close()
            self.running, self._loop = self._make(), loop
            self._start = loop.create_task(self.running.start())
            self._start.add_done_callback(_seen)  # a failed start is reported where it is awaited
        return self.running, self._start

    async def started(self) -> Helper:
        helper, start = self.starting()
        await asyncio.shield(start)
        return helper

    def close(self) -> None:
        if self.running is not None:
            self.running.close()
            self.running = None


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
        self._slots = SlotPool(self.max_processes)
        self._source = child_source()
        libraries = [os.path.realpath(p) for p in self.config.library_paths]
        self._root_paths = _root_paths() + libraries
        self._preload = Preload(tuple(libraries), self.config.preload)
        self._hide = _hidden_paths(self._root_paths)
        self._zygote = PerLoop(lambda: ForkServer(child_source(fork_server=True), CHILD_ENV, self._preload))
        self._judges = PerLoop(JudgeServer)
        self._root = os.geteuid() == 0
        self._mechanisms = candidates(self._root, self.config.isolate, self.config.containment)
        self._probing: asyncio.Task[Containment] | None = None
        self._teardowns: set[asyncio.Future[None]] = set()
        self._chosen: Containment | None = None
        self._budget = CgroupBudget(self.config.memory_mb, self.config.processes)
        self._speed: float | None = None  # calibration.workload_seconds() here, measured once
        self._timing: asyncio.Task[float] | None = None  # that measurement, in a worker thread
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
        """The mechanism in use, once the first attempt (or ``prepare``) has found it."""
        return self._chosen

    async def prepare(self, problems: Awaitable[Sequence[Problem]] | None = None) -> Containment:
        """Find the containment and start the helper servers now, before any attempt: a
        ``SandboxError`` when no containment holds (or a server cannot start). Meanwhile, unless
        none of ``problems`` (awaited as they load) has per-input budgets, the machine's speed
        (``speed``: it scales those budgets) is measured off the event loop."""
        self._warm_up()
        timing = asyncio.ensure_future(self._speed_for(problems))
        try:
            containment = await self.containment_in_use()
            await self._judge_server()
            if self.config.fork_server and containment.mechanism is not Mechanism.BUBBLEWRAP:
                await self._zygote.started()
            await timing
        finally:
            timing.cancel()
        return containment

    async def _speed_for(self, problems: Awaitable[Sequence[Problem]] | None) -> None:
        """Measure the machine's speed unless none of ``problems`` has per-input budgets."""
        if problems is not None and not any(map(self._budgeted, await asyncio.shield(problems))):
            return
        if self._speed is None:
            await self._timing_task()

    @property
    def speed(self) -> float | None:
        """This machine's calibration workload in CPU seconds (``calibration.workload_seconds``),
        once measured: by ``prepare``, or before the first attempt that has per-input budgets."""
        return self._speed

    def _timing_task(self) -> asyncio.Task[float]:
        """The speed measurement (in a worker thread; begun now unless it is running)."""
        loop = asyncio.get_running_loop()
        if self._timing is None or self._timing.get_loop() is not loop:
            self._timing = loop.create_task(self._measure_speed())
        return self._timing

    async def _measure_speed(self) -> float:
        speed = await asyncio.to_thread(workload_seconds)
        if self._speed is None:
            self._speed = speed
        return self._speed

    @property
    def budget(self) -> CgroupBudget:
        """The run's cgroups: what each attempt's memory, processes and CPU are bounded by."""
        return self._budget

    def helper_pids(self) -> HelperPids:
        """The pids of this sandbox's helper processes, where they run (for tests and diagnostics)."""
        return HelperPids(judge_server=self._judges.pid, fork_server=self._zygote.pid)

    async def containment_in_use(self) -> Containment:
        """The mechanism attempts run under: the strongest that works here, probed once per process
        and settings (now, when no attempt has found it yet)."""
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
        if not self._chosen.full:
            _not_dumpable()
        return self._chosen

    def _command(self, mechanism: Mechanism, cgroups: list[str] | None = None) -> list[str]:
        """A fresh child process for ``mechanism`` (bwrap wraps the interpreter; the attempt's
        cgroup directories are bound in so that the child can join them)."""
        python = python_command(self._source)
        if mechanism is Mechanism.BUBBLEWRAP:
            return bwrap_command(self._root_paths, self._hide, self.config.tmp_mb, cgroups or []) + python
        return python

    def _probe_job(self, mechanism: Mechanism, workdir: str) -> bytes:
        limits = {**self._limits_for(self.config.cpu_floor), "cpu_seconds": math.ceil(self.config.cpu_floor)}
        probe = {"probe": True, "send_limit": 0, "base_count": 0}
        uid = self._slot_uid(mechanism, 0)
        if uid is not None and mechanism is Mechanism.LIMITS_ONLY:  # it works in the directory as that uid
            os.chown(workdir, uid, uid)
        return with_program(self._source, marshal.dumps({**self._setup(mechanism, workdir, 0, None, limits), **probe}))

    def _limits_for(self, reference_seconds: float) -> dict[str, int]:
        cfg = self.config
        return {
            "cpu_seconds": math.ceil(cfg.cpu_floor + cfg.cpu_factor * reference_seconds),
            "memory_mb": cfg.memory_mb,
            "processes": cfg.processes,
            "open_files": cfg.open_files,
            "file_mb": cfg.file_mb,
            "tmp_mb": cfg.tmp_mb,
            "tmp_inodes": cfg.tmp_inodes,
        }

    def _budgeted(self, problem: Problem) -> bool:
        """Does each input of ``problem`` get a CPU budget of its own (measured reference times)?"""
        timed = len(problem.input_seconds) == len(problem.inputs) and problem.calibration > 0
        return bool(self.config.input_factor) and timed and not problem.replays_check

    def input_budgets(self, problem: Problem) -> list[float] | None:
        """Each input's CPU seconds (EvalPlus datasets with measured reference times), else None."""
        cfg = self.config
        if not self._budgeted(problem):
            return None
        if self._speed is None:  # not measured yet (a direct caller): measured here, once
            self._speed = workload_seconds()
        scale = max(1.0, self._speed / problem.calibration)  # never tighter than where they were measured
        return [max(cfg.input_floor, cfg.input_factor * seconds * scale) for seconds in problem.input_seconds]

    def answer_limits(self, problem: Problem) -> AnswerLimits:
        """What the judge accepts from an attempt at ``problem`` (the child sends no more)."""
        cfg = self.config
        line_kb = cfg.humaneval_line_kb if problem.replays_check else cfg.line_kb
        return AnswerLimits(
            send_limit=line_kb * 1024,
            answer_bytes=cfg.answer_mb * 2**20,
            max_depth=cfg.max_depth,
            max_items=cfg.max_items,
            max_int_digits=cfg.max_int_digits,
        )

    def _slot_uid(self, mechanism: Mechanism, slot: int) -> int | None:
        """The unprivileged uid an attempt runs as, when koderz is root (a user namespace keeps the caller's)."""
        if self._root and mechanism in (Mechanism.ROOT_NAMESPACES, Mechanism.LIMITS_ONLY):
            return self.config.uid_base + slot
        return None

    def _setup(
        self, mechanism: Mechanism, workdir: str, slot: int, cgroup: AttemptCgroup | None, limits: dict[str, int]
    ) -> dict[str, object]:
        """The containment part of a job: what the child enters before it runs anything."""
        return {
            "mechanism": mechanism.value,
            "limits": limits,
            "env": NOBODY_ENV if mechanism is Mechanism.LIMITS_ONLY else CHILD_ENV,
            "uid": self._slot_uid(mechanism, slot),
            "workdir": workdir,
            "root_paths": self._root_paths,
            "hide": self._hide,
            "cgroups": cgroup.joins if cgroup else [],
            "budget": {"memory": self._budget.memory, "processes": self._budget.pids, "cpu": self._budget.cpu},
        }

    def _job(
        self,
        problem: Problem,
        program: str,
        preamble: str,
        workdir: str,
        slot: int,
        mechanism: Mechanism,
        cgroup: AttemptCgroup | None,
    ) -> bytes:
        limits, _ = self._limits(problem)
        return marshal.dumps(
            {
                **self._setup(mechanism, workdir, slot, cgroup, limits),
                "preamble": preamble,
                "program": program,
                "entry_point": problem.entry_point,
                "send_limit": self.answer_limits(problem).send_limit,
                "base_count": problem.base_input_count,
                "inputs": self._inputs(problem),
                "budgets": self.input_budgets(problem),
            }
        )

    async def evaluate(self, problem: Problem, program: str, *, preamble: str | None = None) -> Verdict:
        """Run ``program`` on ``problem``'s tests in a fresh contained process, after ``preamble``
        in the same namespace (None: the prompt's imports and helpers; the ``evalplus`` protocol
        passes "": EvalPlus runs the program alone).

        Raises ``SandboxError`` when the harness itself fails (a zygote or judge crashed,
        the attempt could not be set up): that is not a verdict on the program. The verdict is
        decided before the attempt's directory and cgroup are torn down; the teardown runs in
        the background and cannot change it.
        """
        self._warm_up()
        containment = await self.containment_in_use()
        mechanism = containment.mechanism
        await (await self._judge_server()).register(problem)  # while other attempts hold the slots
        if self._speed is None and self._budgeted(problem):
            await self._timing_task()  # the budgets need it; measured once, off the event loop
        slot = await self._slots.acquire(_cost(problem))
        started = time.perf_counter()
        try:
            workdir = tempfile.mkdtemp(prefix="koderz-attempt-")  # private: mode 0700
        except OSError as exc:
            self._slots.release(slot)
            raise SandboxError(f"cannot create an attempt directory: {exc}") from exc
        cgroup = None
        try:
            uid = self._slot_uid(mechanism, slot)
            if uid is not None:
                os.chown(workdir, uid, uid)  # fails closed: root without CAP_CHOWN runs no attempt
            cgroup = self._attempt_cgroup(slot)
            if preamble is None:
                preamble = preamble_of(problem.prompt, problem.entry_point)
            job = self._job(problem, program, preamble, workdir, slot, mechanism, cgroup)
            judgement, output, stop = await self._run(problem, job, workdir, mechanism, cgroup)
        except OSError as exc:
            raise SandboxError(f"sandbox attempt at {problem.task_id} failed: {exc}") from exc
        finally:
            if cgroup is not None and self._budget.keep(slot, cgroup):
                cgroup = None  # the slot's next attempt runs in it
            self._slots.release(slot)
            self._teardown(workdir, cgroup)
        verdict = self._decide(problem, judgement, output, stop)
        isolation = {**verdict.isolation, **containment.report()} if verdict.isolation else {}
        return replace(verdict, duration=time.perf_counter() - started, isolation=isolation, mechanism=mechanism)

    def _teardown(self, workdir: str, cgroup: AttemptCgroup | None) -> None:
        """Remove the attempt's directory (and its cgroup, unless its slot kept it) in a thread of
        their own, after the verdict: however long it takes (a /tmp full of files), it delays and
        changes no verdict."""
        task = asyncio.get_running_loop().run_in_executor(None, _remove_attempt, workdir, cgroup)
        self._teardowns.add(task)
        task.add_done_callback(self._teardowns.discard)

    async def drain(self) -> None:
        """Wait (bounded) for the teardowns of finished attempts."""
        if self._teardowns:
            await asyncio.wait(list(self._teardowns), timeout=TEARDOWN_SECONDS)

    def _attempt_cgroup(self, slot: int) -> AttemptCgroup | None:
        """The attempt's own cgroup (its slot's, which no other attempt uses meanwhile); on a
        failure the attempt runs on its rlimits (and says so)."""
        try:
            return self._budget.for_slot(slot)
        except OSError as exc:
            log.warning("sandbox: no cgroup for this attempt (%s); its memory limit is per process", exc)
            return None

    async def _run(
        self, problem: Problem, job: bytes, workdir: str, mechanism: Mechanism, cgroup: AttemptCgroup | None
    ) -> tuple[Judgement, str, Stop | None]:
        """Run one attempt; its judge decides. Returns the judgement, the captured output and,
        when the child ended before it answered every test, how it ended as measured (``Stop``)."""
        limits, wall = self._limits(problem)
        cpu_limit = limits["cpu_seconds"]
        judges = await self._judge_server()
        key = await judges.register(problem)
        results_r, results_w = os.pipe()
        try:  # the judge is handed the read end while the attempt is forked with the write end
            judge, proc = await _both(
                judges.judge(key, self._judge_request(problem), results_r),
                self._spawn(workdir, results_w, mechanism, cgroup),
            )
        finally:
            os.close(results_r)
            os.close(results_w)
        # a fresh interpreter is blocked reading its job: this pidfd is surely its own
        pidfd = None if isinstance(proc, ForkedProcess) else os.pidfd_open(proc.pid)
        captured = bytearray()
        cap = self.config.output_kb * 1024

        assert proc.stdin is not None and proc.stderr is not None
        stdin, stderr = proc.stdin, proc.stderr

        if not isinstance(proc, ForkedProcess):  # a fresh interpreter reads its program first
            job = with_program(self._source, job)

        async def feed() -> None:
            try:
                stdin.write(job)
                await stdin.drain()
                stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass

        async def read_output() -> None:
            while chunk := await stderr.read(65536):
                if len(captured) < cap:
                    captured.extend(chunk[: cap - len(captured)])

        helpers = [asyncio.ensure_future(c) for c in (feed(), read_output())]
        watchers: list[asyncio.Future[None]] = []
        if cgroup is not None:  # the waiter outside the PID namespace is spared: it reaps PID 1
            waiter = proc.pid if mechanism.namespaces else None
            watchers.append(asyncio.ensure_future(_watch(cgroup, waiter, cpu_limit)))
        exited = asyncio.ensure_future(proc.wait())
        deadline = time.monotonic() + wall
        stop: Stop | None = None
        stopped = False
        try:
            done, _ = await asyncio.wait([judge.verdict, exited], timeout=wall, return_when=asyncio.FIRST_COMPLETED)
            if judge.verdict in done and not exited.done() and _incomplete(judge.verdict):
                # the results pipe closed early: how the child ends decides the status
                await asyncio.wait([exited], timeout=max(deadline - time.monotonic(), 0))
            wall_expired = not exited.done()
            await self._stop_child(proc, exited, pidfd)
            stopped = True
            stop = Stop.of(
                Measured(
                    cpu_limit=cpu_limit,
                    cpu_seconds=_cpu_used(cgroup, proc),
                    out_of_memory=cgroup is not None and cgroup.oom_killed(),
                    wall_expired=wall_expired,
                    exit_code=exited.result() if exited.done() else None,  # raises if the fork server died
                )
            )
            judgement = await self._judgement(judge)
        finally:
            if not stopped:  # the harness failed before it stopped the attempt
                await self._stop_child(proc, exited, pidfd)
            judge.kill()
            judge.close()
            for watcher in watchers:  # it polls until cancelled
                watcher.cancel()
            await asyncio.wait(helpers, timeout=DRAIN_SECONDS)
            for task in [*helpers, exited]:
                task.cancel()
            await asyncio.gather(*helpers, *watchers, exited, return_exceptions=True)
            if isinstance(proc, ForkedProcess):
                proc.close()
            if pidfd is not None:
                os.close(pidfd)
        return judgement, captured.decode("utf-8", "replace"), stop

    def _judge_request(self, problem: Problem) -> dict[str, object]:
        return {
            "limits": asdict(self.answer_limits(problem)),
            "cpu_seconds": self.config.judge_cpu_seconds,
            "memory_mb": self.config.judge_memory_mb,
            "first_failure": self.config.detail is Detail.FIRST_FAILURE,
        }

    async def _stop_child(self, proc: Attempt, exited: asyncio.Future[int], pidfd: int | None) -> None:
        """End the attempt (if still running): SIGTERM first (the trusted waiter of a PID namespace
        then kills and reaps its PID 1, so nothing is orphaned to the host's init), then SIGKILL
        to its process group; wait (bounded) until it is reaped. One that is still exiting then
        (the kernel freeing what it left, e.g. a /tmp full of files) is reaped later by its parent:
        it has no say in the verdict any more."""
        if not exited.done():
            _signal_attempt(proc, pidfd, group=False)
            await asyncio.wait([exited], timeout=DRAIN_SECONDS)
        _signal_attempt(proc, pidfd, group=True)  # leftovers of an attempt without a PID namespace
        await asyncio.wait([exited], timeout=DRAIN_SECONDS)
        if not exited.done():
            log.info("sandbox: attempt process %d is still exiting after SIGKILL; it is reaped later", proc.pid)

    async def _judgement(self, judge: JudgeJob) -> Judgement:
        """The judge's verdict, once it has read what the results pipe holds (bounded)."""
        done, _ = await asyncio.wait([judge.verdict], timeout=DRAIN_SECONDS)
        if not done:
            judge.stop()
            cfg = self.config
            await asyncio.wait([judge.verdict], timeout=cfg.judge_cpu_seconds * cfg.wall_factor + cfg.wall_slack)
        if not judge.verdict.done():
            judge.kill()
        await asyncio.wait([judge.exit], timeout=DRAIN_SECONDS)
        if not judge.exit.done():
            raise SandboxError(f"the judge of job {judge.job} did not end")
        code, cpu = judge.exit.result()
        data = judge.verdict.result() if judge.verdict.done() and not judge.verdict.cancelled() else b""
        return _read_judgement(data, code, cpu, self.config)

    def _decide(self, problem: Problem, judgement: Judgement, output: str, stop: Stop | None) -> Verdict:
        """The verdict: the judge's, or for answers that stopped early (and for a cgroup OOM kill)
        what the trusted side measured."""
        total = len(problem.inputs)
        isolation = judgement.isolation
        if isolation is None:
            detail = stop.describe() if stop else "it closed its results"
            raise SandboxError(
                f"sandbox attempt at {problem.task_id} ended before it set itself up ({detail});"
                f" output: {output[-300:]!r}"
            )
        judged, error, run = judgement.status, judgement.error, judgement.tests_run
        failed = [i for i in judgement.failed if type(i) is int and 0 <= i < total][:FAILED_LIMIT]
        cpu_limit = self._limits(problem)[0]["cpu_seconds"]
        if stop is not None and (judged == "incomplete" or (stop.kind is StopKind.MEMORY and judged != "passed")):
            status, error = stop.status(cpu_limit, self._budget.memory)
            if judged == "incomplete":  # it stopped during the test after the last one it answered
                run = min(run + 1, total)
                if run - 1 not in failed and len(failed) < FAILED_LIMIT:
                    failed.append(run - 1)
        else:
            status = _verdict_status(judged)
        return Verdict(
            status is Status.PASSED,
            status,
            judgement.tests_passed,
            total,
            run,
            judgement.failing_input,
            judgement.expected,
            judgement.got,
            error,
            judgement.traceback,
            output,
            isolation=isolation,
            base_passed=judgement.base_passed,
            failed_tests=tuple(str(i) for i in failed),
        )

    async def _spawn(
        self, workdir: str, results_fd: int, mechanism: Mechanism, cgroup: AttemptCgroup | None = None
    ) -> Attempt:
        """A fresh attempt process writing its results to ``results_fd``: forked by the zygote
        when enabled, else a new interpreter (inside bwrap for ``bubblewrap``: each attempt needs
        namespaces of its own)."""
        if self.config.fork_server and mechanism is not Mechanism.BUBBLEWRAP:
            try:
                zygote = await self._zygote.started()
                return await zygote.spawn(results_fd)
            except (SandboxError, OSError) as exc:
                log.warning("sandbox fork server failed (%s); starting a fresh interpreter instead", exc)
                self._zygote.close()
        return await asyncio.create_subprocess_exec(
            *self._command(mechanism, cgroup.paths if cgroup else []),
            stdin=asyncio.subprocess.PIPE,
            stdout=results_fd,
            stderr=asyncio.subprocess.PIPE,
            env=CHILD_ENV,
            cwd=workdir,
            start_new_session=True,
        )

    def _warm_up(self) -> None:
        """Start this loop's judge server and fork server if they are not running, without waiting:
        their interpreters start and import while the containment is probed and the first attempt
        is set up. (No fork server where the containment is known to be bwrap's.)"""
        self._judges.starting()
        if self.config.fork_server and (self._chosen is None or self._chosen.mechanism is not Mechanism.BUBBLEWRAP):
            self._zygote.starting()

    async def preload_report(self) -> PreloadReport:
        """What this loop's fork server preloaded (``config.preload``), once it has tried every
        module; without a fork server (``fork_server=False``, bwrap) every attempt imports them."""
        containment = await self.containment_in_use()
        if not self.config.fork_server or containment.mechanism is Mechanism.BUBBLEWRAP:
            return PreloadReport(failed=dict.fromkeys(self.config.preload, "no fork server: imported per attempt"))
        return await (await self._zygote.started()).preload_report()

    async def _judge_server(self) -> JudgeServer:
        """This loop's judge server, started once; restarted when it has died."""
        try:
            return await self._judges.started()
        except OSError as exc:
            self._judges.close()
            raise SandboxError(f"cannot start the sandbox's judge server: {exc}") from exc

    def close(self) -> None:
        """Stop the fork server and the judge server and remove the run's cgroups (all of which
        also happen when this process exits)."""
        self._zygote.close()
        self._judges.close()
        self._budget.close()


async def _both(judging: Awaitable[JudgeJob], spawning: Awaitable[Attempt]) -> tuple[JudgeJob, Attempt]:
    """A judge and an attempt process, started concurrently; if either fails (or the caller is
    cancelled), the other is undone before the failure goes on."""
    judge_task, proc_task = asyncio.ensure_future(judging), asyncio.ensure_future(spawning)
    tasks: list[asyncio.Future[Any]] = [judge_task, proc_task]
    try:
        await asyncio.wait(tasks)
    finally:
        unfinished = [task for task in tasks if not task.done()]
        for task in unfinished:
            task.cancel()
        if unfinished:
            await asyncio.wait(unfinished)
        judged, spawned = _succeeded(judge_task), _succeeded(proc_task)
        if judged and not spawned:
            judge_task.result().kill()
            judge_task.result().close()
        if spawned and not judged:
            _discard(proc_task.result())
    return judge_task.result(), proc_task.result()


def _succeeded(task: asyncio.Future[Any]) -> bool:
    """Done with a result (the exception of a failed task counts as retrieved)."""
    return task.done() and not task.cancelled() and task.exception() is None


def _discard(proc: Attempt) -> None:
    """Kill an attempt that never got its job (it is blocked reading it) and drop its pipes."""
    if isinstance(proc, ForkedProcess):
        proc.kill_group()
        proc.close()
    else:
        proc.kill()


def _seen(task: asyncio.Task[None]) -> None:
    """Mark a start-up's failure as retrieved: a warm-up nobody awaited is not an error to log."""
    if not task.cancelled():
        task.exception()


def _cost(problem: Problem) -> float:
    """Rough seconds an attempt takes: the reference's CPU time plus encoding its answers."""
    characters = getattr(problem.expected, "characters", None)
    return problem.reference_seconds + (ENCODE_SECONDS_PER_CHAR * characters() if characters else 0.0)


def _incomplete(verdict: asyncio.Task[bytes]) -> bool:
    """True unless the judge's verdict says it is final (every test answered, or a failure)."""
    try:
        return json.loads(verdict.result()).get("status") == "incomplete"
    except Exception:  # noqa: BLE001 - a missing or broken verdict is read (and reported) later
        return False


def _verdict_status(judged: str) -> Status:
    """The judge's status as a verdict ``Status``; any other word is the harness's fault (fail closed)."""
    try:
        status = Status(judged)
    except ValueError:
        status = None
    if status is None or not status.is_verdict:
        raise SandboxError(f"the judge decided {judged[:40]!r}, which is not a verdict")
    return status


def _read_judgement(data: bytes, code: int, cpu: float, cfg: SandboxConfig) -> Judgement:
    """The judge's verdict; a judge that ran out of its budget fails the attempt, any other
    failure of the judge is the harness's (``SandboxError``)."""
    if code == 0:
        try:
            message = json.loads(data)
        except ValueError as exc:
            raise SandboxError(f"a judge process wrote an unreadable verdict: {exc}") from exc
        if "harness" in message:
            raise SandboxError(str(message["harness"]))
        return Judgement(**message)
    if code == MEMORY_EXIT:
        error = OUT_OF_MEMORY.format(cfg.judge_memory_mb)
    elif code == -signal.SIGXCPU or (code == -signal.SIGKILL and cpu >= 0.9 * cfg.judge_cpu_seconds):
        error = (
            f"judging the answers took more than its CPU budget of {cfg.judge_cpu_seconds} s"
            " (answers too costly to decode or compare)"
        )
    else:
        raise SandboxError(f"a judge process died (exit code {code}, {cpu:.1f} s of CPU time)")
    return Judgement("error", 0, error=error, isolation={})  # what the setup report said is lost with the judge


def _signal_attempt(proc: Attempt, pidfd: int | None, *, group: bool) -> None:
    """SIGKILL the attempt's process group (``group``) or SIGTERM the attempt, only while it is
    not reaped, so a reused pid is never signalled: the zygote checks that for the attempts it
    forked; for a fresh interpreter its pidfd (opened when it started) proves it."""
    if isinstance(proc, ForkedProcess):
        proc.kill_group() if group else proc.terminate()
        return
    if pidfd is None:
        return
    try:
        signal.pidfd_send_signal(pidfd, 0 if group else signal.SIGTERM)
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # reaped already (its pid may have been reused), or its group is empty
        pass
    except PermissionError as exc:  # pragma: no cover - only without privileges
        raise SandboxError(f"cannot signal attempt process {proc.pid}: {exc}") from exc


async def _watch(cgroup: AttemptCgroup, spare: int | None, cpu_limit: float) -> None:
    """Kill the attempt (all but ``spare``) once its cgroup has used its CPU budget, or once the
    kernel OOM-killed one of its processes (cgroup v1 has no ``memory.oom.group``): the attempt
    is over, and its status is decided from these same counters."""
    while True:  # kernel counters: nothing to await but time
        await asyncio.sleep(WATCH_SECONDS)
        used = cgroup.cpu_seconds()
        if cgroup.oom_killed() or (used is not None and used >= cpu_limit):
            cgroup.kill(spare)
            return


def _cpu_used(cgroup: AttemptCgroup | None, proc: Attempt) -> float | None:
    """The attempt's CPU time as koderz measured it: its cgroup's, else what its reaper's ``wait4``
    counted (the fork server's); None when neither is known (a fresh interpreter without a cgroup)."""
    used = cgroup.cpu_seconds() if cgroup is not None else None
    if used is None and isinstance(proc, ForkedProcess):
        used = proc.cpu_seconds
    return used


def _remove_attempt(workdir: str, cgroup: AttemptCgroup | None) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
    if cgroup is not None:
        try:
            if leftovers := cgroup.remove():
                log.warning("sandbox: killed %d processes left in an attempt's cgroup", len(leftovers))
        except OSError as exc:
            log.warning("sandbox: could not remove an attempt's cgroup: %s", exc)


def _not_dumpable() -> None:
    """Without a private root an attempt shares the host's /proc: make koderz's own ``/proc/<pid>``
    (environ, memory) unreadable to any other process, whatever its uid."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise SandboxError(f"cannot make koderz non-dumpable: {os.strerror(ctypes.get_errno())}")
