"""The judge server and its pool of judges: each attempt judged within its own CPU and memory budget.

Run by the sandbox as ``python -m koderz.sandbox.judge_server FD`` (trusted: koderz and numpy
are loaded here, never in an attempt). The server keeps each problem the sandbox registers
(pickled) and a pool of judges it forked. An attempt goes to an idle judge, or to a judge
forked for it when none is idle, so it never waits for another attempt's judging. Requests
(``koderz.framing`` messages) arrive on the SEQPACKET socket ``FD``:

- ``REGISTER <key>`` with a pipe: a pickled ``Problem`` to keep under ``key`` (once per problem);
- ``JUDGE <token> <request json>`` with the attempt's results pipe, a stop pipe and a verdict
  pipe: hand the attempt to a judge as job ``<job>``, answer ``STARTED <token> <job>``;
- ``KILL <job>``: SIGKILL the judge of that job if it is still judging it (and not reaped).

The server answers ``EXITED <job> <exit code> <cpu seconds>`` when a job is over: 0 when its judge
wrote a verdict, ``MEMORY_EXIT`` when the memory budget ran out, and the judge's own exit code
(``-SIGXCPU``, ``-SIGKILL``, ...) when it died judging it. A judge receives each problem it
needs once (its pickle, in a memfd) and keeps it. For each job it re-arms its
budget (``RLIMIT_CPU``: the CPU time it has used plus the job's seconds, so the kernel kills it
at the budget; ``RLIMIT_AS``: its size plus the job's megabytes), reads the result lines as
they arrive, judges them, writes one ``Judgement`` as JSON to the verdict pipe (one ``VERDICT``
frame), stops at end of file, at a fatal line (protocol violation or an answer over a limit), or
when the stop pipe closes (then it drains what the pipe holds), closes the job's pipes and reports
``JUDGED <job> <code> <job cpu> <total cpu> <keep>`` to the server; a report that is no message
ends that judge (its job is then reported as the judge's exit). A judge that ran out of memory,
failed, or grew by more than ``RECYCLE_MB`` exits after its report (``keep`` 0); the server
keeps at most ``MAX_IDLE`` idle judges.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import math
import os
import pickle
import resource
import select
import signal
import socket
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import IO, Any

from koderz.answers.wire import OverLimit
from koderz.datasets.problem import Problem
from koderz.framing import FDS_LIMIT, FrameError, Kind, Message, frame, receive, send, write_all
from koderz.sandbox.judge import AnswerLimits, Collector, Judgement, ProtocolError, replay_parts

MEMORY_EXIT = 3
RECYCLE_MB = 256  # a judge that grew by more than this (problems kept, heap left by big answers) is replaced
MAX_IDLE = max(4, os.cpu_count() or 1)  # idle judges kept for the next attempts
OUT_OF_MEMORY = "judging the answers needed more than its memory budget of {} MB"
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
            if self.collector.decided:  # first_failure: the lines after the deciding one are not read
                self.buffer.clear()
                return
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
            if stream.collector.decided:  # first_failure: the verdict is known, the rest is not read
                return
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


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _pages(field_index: int) -> int:
    """Bytes of this process from /proc/self/statm (0: size, 1: resident)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[field_index]) * os.sysconf("SC_PAGE_SIZE")


def _set_budget(cpu_used: float, cpu_seconds: int, memory_mb: int) -> None:
    """This job's budget: killed (SIGXCPU) once it has used ``cpu_seconds`` more of CPU time than
    ``cpu_used`` (whole seconds); MemoryError beyond ``memory_mb`` more than its size now."""
    for limit, soft in (
        (resource.RLIMIT_CPU, math.ceil(cpu_used) + cpu_seconds),
        (resource.RLIMIT_AS, _pages(0) + memory_mb * 2**20),
    ):
        hard = resource.getrlimit(limit)[1]
        resource.setrlimit(limit, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _lift_budget() -> None:
    """Between jobs: no budget (the soft limits back at the hard ones)."""
    for limit in (resource.RLIMIT_CPU, resource.RLIMIT_AS):
        resource.setrlimit(limit, (resource.getrlimit(limit)[1],) * 2)


def judge_attempt(problem: Problem, request: dict[str, Any], results_fd: int, stop_fd: int) -> Judgement:
    """Judge one attempt's result stream (in a forked judge, within its budget)."""
    limits = AnswerLimits(**request["limits"])
    collector = Collector(problem, limits, first_failure=bool(request.get("first_failure")))
    try:
        _read_results(_Stream(collector, limits), results_fd, stop_fd)
        judgement = collector.judgement()
    except ProtocolError as exc:
        error = f"harness protocol violated by the program: {exc}"
        judgement = Judgement("error", collector.passed, error=error, tests_run=collector.count)
    except OverLimit as exc:
        error = f"answer over a limit of the judge: {exc}"
        judgement = Judgement("error", collector.passed, error=error, tests_run=collector.count)
    except MemoryError:
        judgement = Judgement("error", 0, error=OUT_OF_MEMORY.format(request["memory_mb"]))
    if judgement.base_passed is None:
        judgement = replace(judgement, base_passed=collector.base_passed())
    return replace(judgement, isolation=collector.isolation)


def _judge_job(problem: Problem | None, request: dict[str, Any], fds: list[int]) -> tuple[int, bool]:
    """One job in a judge: its verdict written to the verdict pipe, every pipe of the job closed.
    Returns the job's exit code and whether this judge may take another job."""
    results_fd, stop_fd, verdict_fd = fds
    code, keep = 0, True
    try:
        _set_budget(_cpu_seconds(), request["cpu_seconds"], request["memory_mb"])
        if problem is None:
            message = json.dumps({"harness": f"the judge has no problem registered as {request['key']}"})
        else:
            judgement = judge_attempt(problem, request, results_fd, stop_fd)
            keep = judgement.error != OUT_OF_MEMORY.format(request["memory_mb"])  # its heap may be bloated
            message = judgement.to_json()
        write_all(verdict_fd, frame(Message(Kind.VERDICT, message)))
    except MemoryError:
        code, keep = MEMORY_EXIT, False
    except BaseException as exc:  # noqa: BLE001 - a harness failure: reported, never a verdict
        with contextlib.suppress(BaseException):
            text = "".join(traceback.format_exception_only(exc)).strip()[-500:]
            write_all(verdict_fd, frame(Message(Kind.VERDICT, json.dumps({"harness": f"judge failed: {text}"}))))
        code, keep = 1, False
    finally:
        with contextlib.suppress(BaseException):
            _lift_budget()
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
    return code, keep


def _judge_loop(link: socket.socket) -> None:
    """Body of a forked judge: the jobs the server sends, until it closes the link; never returns."""
    problems: dict[str, Problem] = {}
    grown_by = _pages(1) + RECYCLE_MB * 2**20
    try:
        while True:
            received = receive(link, FDS_LIMIT)  # from the server: a FrameError ends this judge
            if received is None:
                break
            message, fds = received
            if message.kind is Kind.REGISTER and len(fds) == 1:  # a problem: kept for this judge's next jobs
                with contextlib.suppress(Exception), os.fdopen(fds[0], "rb") as payload:
                    problem = problems[message.field(0, bytes.decode)] = pickle.load(payload)
                    if problem.replays_check:
                        replay_parts(problem)  # compiled once per judge
                continue
            if message.kind is not Kind.JUDGE or len(fds) != 3:
                for fd in fds:
                    os.close(fd)
                continue
            began = _cpu_seconds()
            request = json.loads(message.fields[1])
            code, keep = _judge_job(problems.get(request["key"]), request, fds)
            keep = keep and _pages(1) <= grown_by
            now = _cpu_seconds()
            send(link, Message(Kind.JUDGED, message.fields[0], code, f"{now - began:.3f}", f"{now:.3f}", int(keep)))
            if not keep:
                break
    finally:
        os._exit(0)


@dataclass
class _Judge:
    """A judge of the pool, as the server sees it."""

    pid: int
    link: socket.socket
    problems: set[str] = field(default_factory=set)  # keys sent to it
    job: bytes | None = None  # the job it is judging
    cpu: float = 0.0  # its CPU time when its last job ended
    keep: bool = True  # it takes another job after this one


class _Server:
    """The server's state: problems (pickled), judges (forked, not reaped) and their jobs."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.problems: dict[str, bytes] = {}
        self.judges: dict[int, _Judge] = {}
        self.idle: list[_Judge] = []
        self.jobs = itertools.count(1)

    def register(self, key: str, payload: IO[bytes]) -> None:
        self.problems[key] = payload.read()

    def dispatch(self, token: bytes, request_text: bytes, fds: list[int]) -> None:
        """Hand a job to an idle judge (a new one if none is idle or it died meanwhile)."""
        job = b"%d" % next(self.jobs)
        try:
            key = str(json.loads(request_text)["key"])
            for judge in self._candidates():
                if judge is not None and self._send_job(judge, job, key, request_text, fds):
                    send(self.control, Message(Kind.STARTED, token, job))
                    return
            send(self.control, Message(Kind.STARTED, token, -1))
        finally:
            for fd in fds:
                os.close(fd)

    def _candidates(self) -> Iterator[_Judge | None]:
        """The most recently idle judge, then a new one (None if it cannot be forked)."""
        if self.idle:
            yield self.idle.pop()
        yield self._fork()

    def _send_job(self, judge: _Judge, job: bytes, key: str, request_text: bytes, fds: list[int]) -> bool:
        try:
            if key not in judge.problems and key in self.problems:
                with _in_memory_file(self.problems[key]) as payload:
                    send(judge.link, Message(Kind.REGISTER, key), [payload.fileno()])
                judge.problems.add(key)
            send(judge.link, Message(Kind.JUDGE, job, request_text), fds)
        except OSError:  # it died while idle: it is reaped in due course
            return False
        judge.job = job
        return True

    def _fork(self) -> _Judge | None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            return None
        if pid == 0:
            with contextlib.suppress(BaseException):
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.closerange(3, theirs.fileno())  # the server's sockets and pipes, other judges' links
                os.closerange(theirs.fileno() + 1, os.sysconf("SC_OPEN_MAX"))
                _prepare_process(b"kz-judge")
                _judge_loop(theirs)
            os._exit(1)
        theirs.close()
        judge = self.judges[pid] = _Judge(pid, ours)
        return judge

    def kill(self, job: bytes) -> None:
        for judge in self.judges.values():  # not reaped yet: its pid cannot have been reused
            if judge.job == job:
                os.kill(judge.pid, signal.SIGKILL)

    def links(self) -> dict[int, _Judge]:
        return {judge.link.fileno(): judge for judge in self.judges.values() if judge.link.fileno() >= 0}

    def hear(self, judge: _Judge) -> None:
        """A judge's reports (``JUDGED``), or the end of its link (also when it sent what is no report)."""
        while True:
            try:
                received = receive(judge.link, flags=socket.MSG_DONTWAIT)
                if received is None:
                    break
                report = received[0]
                if report.kind is not Kind.JUDGED or report.fields[0] != judge.job:
                    continue
                code, job_cpu, total = report.field(1, int), report.field(2, float), report.field(3, float)
            except BlockingIOError:
                return
            except (OSError, FrameError):
                break
            judge.job, judge.cpu, judge.keep = None, total, report.fields[4] == b"1"
            send(self.control, Message(Kind.EXITED, report.fields[0], code, f"{job_cpu:.3f}"))
            if judge.keep and len(self.idle) < MAX_IDLE:
                self.idle.append(judge)
            elif judge.keep:  # enough idle judges: this one ends (end of file on its link)
                break
        judge.link.close()
        judge.keep = False
        with contextlib.suppress(ValueError):
            self.idle.remove(judge)

    def reap(self) -> None:
        while self.judges:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if not pid:
                return
            judge = self.judges.pop(pid, None)
            if judge is None:
                continue
            if judge.link.fileno() >= 0:
                self.hear(judge)  # a report it sent before it ended
                judge.link.close()
            with contextlib.suppress(ValueError):
                self.idle.remove(judge)
            if judge.job is not None:  # it died judging this job
                cpu = usage.ru_utime + usage.ru_stime - judge.cpu
                send(self.control, Message(Kind.EXITED, judge.job, os.waitstatus_to_exitcode(status), f"{cpu:.3f}"))


@contextlib.contextmanager
def _in_memory_file(data: bytes) -> Iterator[IO[bytes]]:
    """A file in memory (memfd) holding ``data``, positioned at its start."""
    with os.fdopen(os.memfd_create("koderz-problem", os.MFD_CLOEXEC), "w+b") as handle:
        handle.write(data)
        handle.flush()
        handle.seek(0)
        yield handle


def serve(control: socket.socket) -> None:
    """The server's loop; returns when the sandbox closes the socket."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    server = _Server(control)
    while True:
        links = server.links()
        try:
            ready = select.select([control.fileno(), wake_r, *links], [], [])[0]
        except InterruptedError:
            continue
        if wake_r in ready:
            os.read(wake_r, 4096)
        for fd in ready:
            if fd in links:
                server.hear(links[fd])
        if control.fileno() in ready:
            received = receive(control, FDS_LIMIT)  # what is no request ends the server: koderz sees it lost
            if received is None:
                return
            message, fds = received
            if message.kind is Kind.REGISTER and len(fds) == 1:
                with os.fdopen(fds[0], "rb") as payload:
                    try:
                        server.register(message.field(0, bytes.decode), payload)
                    except Exception as exc:  # noqa: BLE001 - the sandbox gave up sending it; judges will say so
                        print(
                            f"judge server: problem {message.fields[0][:40]!r} not registered: {exc}", file=sys.stderr
                        )
            elif message.kind is Kind.JUDGE and len(fds) == 3:
                server.dispatch(message.fields[0], message.fields[1], fds)
            elif message.kind is Kind.KILL:
                server.kill(message.fields[0])
            else:
                for fd in fds:
                    os.close(fd)
        server.reap()


def main() -> None:
    import numpy  # noqa: F401 - loaded once here, so that forked judges compare floats without importing it

    global _LIBC
    with contextlib.suppress(OSError):
        _LIBC = ctypes.CDLL(None)
    _prepare_process(b"kz-judges")
    _tune_malloc()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a judge killed at its CPU budget leaves no core
    serve(socket.socket(fileno=int(sys.argv[1])))


if __name__ == "__main__":
    main()
