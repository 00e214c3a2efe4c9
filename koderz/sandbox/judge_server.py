"""The judge zygote and the judges it forks: one per attempt, with its own CPU and memory budget.

Run by the sandbox as ``python -m koderz.sandbox.judge_server FD`` (trusted: koderz,
numpy and the problems' reference answers are loaded here, never in an attempt). Requests
arrive on the SEQPACKET socket ``FD``:

- ``R <key>`` with a pipe: a pickled ``Problem`` to keep under ``key`` (once per problem);
- ``J <token> <key> <limits json>`` with the attempt's results pipe, a stop pipe and a
  verdict pipe: fork a judge, answer ``P <token> <pid>``;
- ``K <pid>``: SIGKILL that judge if it is still an unreaped child (no pid reuse).

The zygote answers ``X <pid> <exit code> <cpu seconds>`` when it reaps a judge. A judge
reads the child's result lines straight from the pipe (the sandbox's event loop never
sees them), judges them as they arrive and writes one ``Judgement`` as JSON to the
verdict pipe. It stops reading at end of file, at a fatal line (protocol violation or an
answer over a limit), or when the stop pipe closes (then it drains what the pipe holds).
Exit codes: 0 a verdict was written, ``MEMORY_EXIT`` the memory budget ran out; killed by
SIGXCPU/SIGKILL at the CPU budget.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pickle
import resource
import select
import signal
import socket
import sys
import traceback
from dataclasses import replace
from typing import Any

from koderz.datasets.problem import Problem
from koderz.sandbox.judge import AnswerLimits, Collector, Judgement, ProtocolError, replay_parts
from koderz.sandbox.wire import OverLimit

MEMORY_EXIT = 3
PR_SET_PDEATHSIG, PR_SET_NAME = 1, 15
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, MMAP_THRESHOLD = -1, -3, 32 * 1024 * 1024  # glibc's mallopt
READ_SIZE = 1 << 20


class _Stream:
    """Splits the result pipe into lines, within the line and total byte limits."""

    def __init__(self, collector: Collector, limits: AnswerLimits) -> None:
        self.collector, self.limits = collector, limits
        self.buffer = bytearray()
        self.total = 0

    def take(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if self.total > self.limits.answer_bytes:
            raise OverLimit(f"the answers exceed {self.limits.answer_bytes // 2**20} MB in all")
        start = len(self.buffer)
        self.buffer += chunk
        end = self.buffer.find(b"\n", start)
        if end < 0:
            if len(self.buffer) > self.limits.line_bytes:
                raise OverLimit(f"a result line is longer than {self.limits.line_bytes} bytes")
            return
        begin = 0
        while end >= 0:
            if end - begin > self.limits.line_bytes:
                raise OverLimit(f"a result line is longer than {self.limits.line_bytes} bytes")
            self.collector.feed(bytes(self.buffer[begin:end]))
            begin = end + 1
            end = self.buffer.find(b"\n", begin)
        del self.buffer[:begin]
        if len(self.buffer) > self.limits.line_bytes:
            raise OverLimit(f"a result line is longer than {self.limits.line_bytes} bytes")


def _read_results(stream: _Stream, results_fd: int, stop_fd: int) -> None:
    poller = select.poll()
    poller.register(results_fd, select.POLLIN)
    poller.register(stop_fd, select.POLLIN)
    while True:
        ready = {fd for fd, _ in poller.poll()}
        if results_fd in ready:
            chunk = os.read(results_fd, READ_SIZE)
            if not chunk:
                return
            stream.take(chunk)
        elif stop_fd in ready:  # the attempt is over: judge what the pipe still holds
            os.set_blocking(results_fd, False)
            while True:
                try:
                    chunk = os.read(results_fd, READ_SIZE)
                except BlockingIOError:
                    return
                if not chunk:
                    return
                stream.take(chunk)


_LIBC: Any = None  # the C library (ctypes), loaded once by the zygote; None where it cannot be


def _prepare_process(name: bytes) -> None:
    """Name this process (for ps and top) and have it killed when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        _LIBC.prctl(PR_SET_NAME, name, 0, 0, 0)
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _tune_malloc() -> None:
    """Let big answers reuse heap pages instead of faulting in fresh ones (glibc's mallopt, set
    once in the zygote: its judges inherit it; elsewhere skipped)."""
    with contextlib.suppress(AttributeError):
        _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        _LIBC.mallopt(M_TRIM_THRESHOLD, 4 * MMAP_THRESHOLD)


def _set_budget(cpu_seconds: int, memory_mb: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    with open("/proc/self/statm") as handle:
        size = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (size + memory_mb * 2**20,) * 2)


def judge_attempt(problem: Problem, request: dict[str, Any], results_fd: int, stop_fd: int) -> Judgement:
    """Judge one attempt's result stream (in a forked judge, within its budget)."""
    limits = AnswerLimits(**request["limits"])
    collector = Collector(problem, limits)
    try:
        _read_results(_Stream(collector, limits), results_fd, stop_fd)
        judgement = collector.judgement()
    except ProtocolError as exc:
        judgement = Judgement("error", collector.passed, error=f"harness protocol violated by the program: {exc}")
    except OverLimit as exc:
        judgement = Judgement("error", collector.passed, error=f"answer over a limit of the judge: {exc}")
    except MemoryError:
        judgement = Judgement(
            "error", 0, error=f"judging the answers needed more than its memory budget of {request['memory_mb']} MB"
        )
    if judgement.base_passed is None:
        judgement = replace(judgement, base_passed=collector.base_passed())
    return replace(judgement, isolation=collector.isolation)


def _run_judge(problem: Problem | None, request: dict[str, Any], fds: list[int]) -> None:
    """Body of a forked judge; never returns."""
    results_fd, stop_fd, verdict_fd = fds
    code = 0
    try:
        _prepare_process(b"kz-judge")
        _set_budget(request["cpu_seconds"], request["memory_mb"])
        if problem is None:
            message = json.dumps({"harness": f"the judge has no problem registered as {request['key']}"})
        else:
            message = judge_attempt(problem, request, results_fd, stop_fd).to_json()
        data = message.encode()
        while data:
            data = data[os.write(verdict_fd, data) :]
    except MemoryError:
        code = MEMORY_EXIT
    except BaseException as exc:  # noqa: BLE001 - a harness failure: reported, never a verdict
        with contextlib.suppress(BaseException):
            text = "".join(traceback.format_exception_only(exc)).strip()[-500:]
            os.write(verdict_fd, json.dumps({"harness": f"judge failed: {text}"}).encode())
        code = 1
    os._exit(code)


def serve(control: socket.socket) -> None:
    """The zygote's loop; returns when the sandbox closes the socket."""
    problems: dict[str, Problem] = {}
    live: set[int] = set()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    while True:
        try:
            ready = select.select([control.fileno(), wake_r], [], [])[0]
        except InterruptedError:
            continue
        if wake_r in ready:
            os.read(wake_r, 4096)
        if control.fileno() in ready:
            message, fds, _, _ = socket.recv_fds(control, 1 << 16, 3)
            if not message:
                return
            kind, _, rest = message.partition(b" ")
            if kind == b"R" and len(fds) == 1:
                with os.fdopen(fds[0], "rb") as payload:
                    try:
                        problem = problems[rest.decode()] = pickle.load(payload)
                        if problem.dataset == "humaneval":
                            replay_parts(problem)  # compiled once, here: every judge of it inherits the code
                    except Exception as exc:  # noqa: BLE001 - the sandbox gave up sending it; judges will say so
                        print(f"judge server: problem {rest[:40]!r} not registered: {exc}", file=sys.stderr)
            elif kind == b"J" and len(fds) == 3:
                token, _, request_text = rest.partition(b" ")
                request = json.loads(request_text)
                pid = os.fork()
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    control.close()
                    os.close(wake_r)
                    os.close(wake_w)
                    _run_judge(problems.get(request["key"]), request, fds)
                live.add(pid)
                for fd in fds:
                    os.close(fd)
                control.send(b"P %s %d" % (token, pid))
            elif kind == b"K":
                pid = int(rest)
                if pid in live:  # still our unreaped child: the pid cannot have been reused
                    os.kill(pid, signal.SIGKILL)
            else:
                for fd in fds:
                    os.close(fd)
        while live:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if not pid:
                break
            live.discard(pid)
            cpu = usage.ru_utime + usage.ru_stime
            control.send(b"X %d %d %.3f" % (pid, os.waitstatus_to_exitcode(status), cpu))


def main() -> None:
    import numpy  # noqa: F401 - loaded once here, so that forked judges compare floats without importing it

    global _LIBC
    with contextlib.suppress(OSError):
        _LIBC = ctypes.CDLL(None)
    _prepare_process(b"kz-judges")
    _tune_malloc()
    serve(socket.socket(fileno=int(sys.argv[1])))


if __name__ == "__main__":
    main()
