"""``await Sandbox.evaluate(problem, program) -> Verdict``: contained runs, trusted verdicts.

Each attempt is a fresh ``python -I -S`` process (an asyncio subprocess) running
``child.py``: own session and process group, private namespaces and minimal root when
the OS permits, resource limits, an unprivileged uid of its own (one per concurrent
slot, so per-user limits bind even when koderz runs as root), a scrubbed environment,
stdin closed, output capped. The child streams plain outputs; ``judge`` decides here.
"""

from __future__ import annotations

import asyncio
import json
import logging
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
from koderz.sandbox.checkenv import preamble_of
from koderz.sandbox.judge import Outcome, judge
from koderz.sandbox.verdict import Verdict
from koderz.sandbox.wire import from_tree, to_tree
from koderz.errors import SandboxError

log = logging.getLogger(__name__)

CHILD_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
ROOT_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc")
MAX_LINE = 48 * 1024 * 1024 + 4096


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


class Sandbox:
    """Runs candidate programs; at most ``max_processes`` at once, whatever the callers do."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        slots = self.config.max_processes or os.cpu_count() or 1
        self._slots: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(slots):
            self._slots.put_nowait(slot)
        self._source = _child_source()
        self._hide = _hidden_paths()
        self._root_paths = list(ROOT_PATHS) + [os.path.realpath(sys.base_prefix)]
        self._inputs: dict[tuple[str, str], str] = {}
        self._root = os.geteuid() == 0
        if not self._root:
            log.warning("sandbox: not running as root; namespaces, private root and uid drop are off")

    @property
    def max_processes(self) -> int:
        return self.config.max_processes or os.cpu_count() or 1

    def _inputs_json(self, problem: Problem) -> str:
        key = (problem.dataset, problem.task_id)
        if key not in self._inputs:
            self._inputs[key] = json.dumps([to_tree(args) for args in problem.inputs], separators=(",", ":"))
        return self._inputs[key]

    def _limits(self, problem: Problem) -> tuple[dict[str, int], float]:
        cfg = self.config
        cpu = math.ceil(cfg.cpu_floor + cfg.cpu_factor * problem.reference_seconds)
        limits = {"cpu_seconds": cpu, "memory_mb": cfg.memory_mb, "processes": cfg.processes,
                  "open_files": cfg.open_files, "file_mb": cfg.file_mb, "tmp_mb": cfg.tmp_mb}
        return limits, cfg.wall_factor * cpu + cfg.wall_slack

    def _job(self, problem: Problem, program: str, workdir: str, slot: int) -> bytes:
        limits, _ = self._limits(problem)
        head = {
            "program": preamble_of(problem.prompt, problem.entry_point) + "\n" + program,
            "entry_point": problem.entry_point, "limits": limits, "env": CHILD_ENV,
            "isolate": self.config.isolate, "uid": self.config.uid_base + slot if self._root else None,
            "workdir": workdir, "root_paths": self._root_paths, "hide": self._hide,
        }
        text = json.dumps(head, separators=(",", ":"))
        return (text[:-1] + ',"inputs":' + self._inputs_json(problem) + "}").encode()

    async def evaluate(self, problem: Problem, program: str) -> Verdict:
        """Run ``program`` on ``problem``'s tests in a fresh contained process."""
        slot = await self._slots.get()
        workdir = tempfile.mkdtemp(prefix="koderz-attempt-")
        started = time.perf_counter()
        try:
            if self._root:
                os.chown(workdir, self.config.uid_base + slot, self.config.uid_base + slot)
            lines, output, cut_short = await self._run(problem, program, workdir, slot)
        finally:
            self._slots.put_nowait(slot)
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        verdict = await asyncio.to_thread(self._decide, problem, lines, output, cut_short)
        return _with(verdict, duration=time.perf_counter() - started)

    async def _run(self, problem: Problem, program: str, workdir: str, slot: int) -> tuple[list[bytes], str, str | None]:
        _, wall = self._limits(problem)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", "-B", "-c", self._source,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=CHILD_ENV, cwd=workdir, start_new_session=True, limit=MAX_LINE,
        )
        lines: list[bytes] = []
        captured = bytearray()
        cap = self.config.output_kb * 1024

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
                except ValueError:  # a line beyond the limit: protocol violation
                    lines.append(b'{"violation":"line too long"}')
                    return
                if not line:
                    return
                lines.append(line)

        async def read_output() -> None:
            while chunk := await proc.stderr.read(65536):
                if len(captured) < cap:
                    captured.extend(chunk[: cap - len(captured)])

        cut_short: str | None = None
        tasks = [asyncio.ensure_future(c) for c in (feed(), read_results(), read_output())]
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=wall)
            code = await asyncio.wait_for(proc.wait(), timeout=wall)
            cut_short = _status_from_exit(code)
        except asyncio.TimeoutError:
            cut_short = "timeout"
        finally:
            _kill_group(proc.pid)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await proc.wait()
        return lines, captured.decode("utf-8", "replace"), cut_short

    def _decide(self, problem: Problem, lines: list[bytes], output: str, cut_short: str | None) -> Verdict:
        isolation: dict[str, str] = {}
        outcomes: list[Outcome] = []
        total = len(problem.inputs)
        for raw in lines:
            try:
                message = json.loads(raw)
                if not isinstance(message, dict):
                    raise ValueError("not an object")
                if "ready" in message and not isolation:
                    isolation = {str(k): str(v) for k, v in message["ready"].items()}
                elif "load_error" in message:
                    return Verdict(False, "error", 0, total, error=str(message["load_error"])[:1000],
                                   traceback=str(message.get("tb") or "")[:2000] or None, output=output, isolation=isolation)
                elif "i" in message:
                    if message["i"] != len(outcomes) or len(outcomes) >= total:
                        raise ValueError("result out of order")
                    if "out" in message:
                        outcomes.append(Outcome(value=from_tree(message["out"])))
                    else:
                        outcomes.append(Outcome(error=str(message["err"])[:1000], traceback=str(message.get("tb") or "")[:2000] or None))
                elif "violation" in message:
                    raise ValueError(message["violation"])
            except (ValueError, TypeError, KeyError, RecursionError) as exc:
                return Verdict(False, "error", 0, total, error="harness protocol violated by the program: %s" % exc,
                               output=output, isolation=isolation)
        if not isolation:
            cut_short = cut_short or "killed"
            if not lines and cut_short == "killed":
                log.warning("sandbox child for %s died before setup; output: %s", problem.task_id, output[-500:])
        j = judge(problem, outcomes, None if len(outcomes) == total else (cut_short or "killed"))
        return Verdict(j.status == "passed", j.status, j.tests_passed, total, j.failing_input, j.expected, j.got,
                       j.error, j.traceback, output, isolation=isolation)


def _status_from_exit(code: int) -> str | None:
    signum = -code if code < 0 else code - 128 if code > 128 else 0
    if signum in (signal.SIGXCPU, signal.SIGKILL):
        return "timeout" if signum == signal.SIGXCPU else "killed"
    return None if code == 0 else "killed"


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError as exc:  # pragma: no cover - only without privileges
        raise SandboxError("cannot kill attempt process group %d: %s" % (pid, exc)) from exc


def _with(verdict: Verdict, **changes: object) -> Verdict:
    from dataclasses import replace

    return replace(verdict, **changes)
