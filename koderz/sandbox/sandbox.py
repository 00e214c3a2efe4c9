"""``await Sandbox.evaluate(problem, program) -> Verdict``: contained runs, trusted verdicts.

Each attempt is a fresh ``python -I -S`` process (an asyncio subprocess) running
``child.py``: own session and process group, private namespaces and minimal root when
the OS permits, resource limits, an unprivileged uid of its own (one per concurrent
slot, so per-user limits bind even when koderz runs as root), a scrubbed environment,
stdin closed, output capped. The child streams plain outputs; ``judge`` decides here.
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

from koderz.datasets.groundtruth import cache_dir
from koderz.datasets.problem import Problem
from koderz.errors import SandboxError
from koderz.sandbox.checkenv import assemble, preamble_of
from koderz.sandbox.forkserver import ForkedProcess, ForkServer
from koderz.sandbox.judge import Collector, judge
from koderz.sandbox.judge import error_status as _error_status
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


def _child_source() -> str:
    package = resources.files("koderz.sandbox")
    return (package / "wire.py").read_text() + "\n" + (package / "child.py").read_text()


def _hidden_paths() -> list[str]:
    """Paths the child must not see: site-packages, koderz itself, its caches, the cwd."""
    stdlib = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")}
    candidates = set(site.getsitepackages()) | {site.getusersitepackages(), str(cache_dir()), os.getcwd()}
    candidates |= {p for p in sys.path if p and os.path.realpath(p) not in stdlib and "lib-dynload" not in p}
    candidates.add(str(Path(__file__).resolve().parents[2]))
    for base in ("/usr/lib", "/usr/local/lib"):
        candidates |= {str(p) for p in Path(base).glob("python3*/*-packages")}
    return sorted(os.path.realpath(p) for p in candidates if p)


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
        self._hide = _hidden_paths()
        self._root_paths = [*list(ROOT_PATHS), os.path.realpath(sys.base_prefix)]
        self._zygote: ForkServer | None = None
        self._zygote_loop: asyncio.AbstractEventLoop | None = None
        self._zygote_start: asyncio.Task[None] | None = None
        self._root = os.geteuid() == 0
        if not self._root:
            log.warning(
                "sandbox: not running as root; namespaces, private root and uid drop are off"
                " (resource limits, own session and scrubbed environment still apply)"
            )

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
        cfg = self.config
        cpu = math.ceil(cfg.cpu_floor + cfg.cpu_factor * problem.reference_seconds)
        limits = {
            "cpu_seconds": cpu,
            "memory_mb": cfg.memory_mb,
            "processes": cfg.processes,
            "open_files": cfg.open_files,
            "file_mb": cfg.file_mb,
            "tmp_mb": cfg.tmp_mb,
        }
        return limits, cfg.wall_factor * cpu + cfg.wall_slack

    def _job(self, problem: Problem, program: str, workdir: str, slot: int) -> bytes:
        limits, _ = self._limits(problem)
        return marshal.dumps(
            {
                "program": assemble(preamble_of(problem.prompt, problem.entry_point), program),
                "entry_point": problem.entry_point,
                "limits": limits,
                "env": CHILD_ENV,
                "isolate": self.config.isolate,
                "uid": self.config.uid_base + slot if self._root else None,
                "workdir": workdir,
                "root_paths": self._root_paths,
                "hide": self._hide,
                "send_limit": MAX_OUTPUT if problem.dataset == "humaneval" else SEND_LIMIT,
                "inputs": self._inputs(problem),
            }
        )

    async def evaluate(self, problem: Problem, program: str) -> Verdict:
        """Run ``program`` on ``problem``'s tests in a fresh contained process."""
        slot = await self._slots.acquire(_cost(problem))
        workdir = tempfile.mkdtemp(prefix="koderz-attempt-")
        started = time.perf_counter()
        try:
            if self._root:
                try:
                    os.chown(workdir, self.config.uid_base + slot, self.config.uid_base + slot)
                except PermissionError:  # root without CAP_CHOWN: the child stays uid 0
                    os.chmod(workdir, 0o777)
            results, output, cut_short = await self._run(problem, program, workdir, slot)
        finally:
            self._slots.release(slot)
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        verdict = self._decide(problem, results, output, cut_short)
        return _with(verdict, duration=time.perf_counter() - started)

    async def _run(self, problem: Problem, program: str, workdir: str, slot: int) -> tuple[Collector, str, str | None]:
        _, wall = self._limits(problem)
        proc = await self._spawn(workdir)
        results = Collector(problem)
        captured = bytearray()
        cap = self.config.output_kb * 1024
        violation: list[str] = []

        async def feed() -> None:
            try:
                proc.stdin.write(self._job(problem, program, workdir, slot))
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
        tasks = [asyncio.ensure_future(c) for c in (feed(), read_results(), read_output(), proc.wait())]
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

    async def _spawn(self, workdir: str) -> asyncio.subprocess.Process | ForkedProcess:
        """A fresh attempt process: forked by the zygote when enabled, else a new interpreter."""
        if self.config.fork_server:
            try:
                zygote = await self._fork_server()
                return await zygote.spawn()
            except (SandboxError, OSError) as exc:
                log.warning("sandbox fork server failed (%s); starting a fresh interpreter instead", exc)
                self._close_zygote()
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-S",
            "-B",
            "-c",
            self._source,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=CHILD_ENV,
            cwd=workdir,
            start_new_session=True,
            limit=MAX_LINE,
        )

    async def _fork_server(self) -> ForkServer:
        """This loop's zygote, started once (concurrent callers share the start-up)."""
        loop = asyncio.get_running_loop()
        if (
            self._zygote_loop is not loop
            or self._zygote is None
            or (self._zygote_start.done() and not self._zygote.alive)
        ):
            self._close_zygote()
            self._zygote, self._zygote_loop = ForkServer(self._source, CHILD_ENV, MAX_LINE), loop
            self._zygote_start = loop.create_task(self._zygote.start())
        zygote = self._zygote
        await asyncio.shield(self._zygote_start)
        return zygote

    def _close_zygote(self) -> None:
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None

    def close(self) -> None:
        """Stop the fork server (it also stops by itself when this process exits)."""
        self._close_zygote()

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


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError as exc:  # pragma: no cover - only without privileges
        raise SandboxError(f"cannot kill attempt process group {pid}: {exc}") from exc


def _with(verdict: Verdict, **changes: object) -> Verdict:
    from dataclasses import replace

    return replace(verdict, **changes)
