"""Why an attempt ended before it answered every test, decided by the trusted side alone.

``timeout`` and ``memory`` come from what koderz measured (the CPU time of the attempt's
cgroup or of the process its trusted reaper reaped, the wall clock, the cgroup's OOM-kill
counter), never from the program's exit code or the name of an exception it raised: a
program that calls ``os._exit(124)`` or raises ``MemoryError`` has merely exited or failed.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import StrEnum

from koderz.vocab import Status

CPU_TOLERANCE = 0.05  # seconds: the kernel checks RLIMIT_CPU on a tick


class StopKind(StrEnum):
    CPU = "cpu"  # measured CPU time reached the attempt's limit
    WALL = "wall"  # the wall-clock backstop expired
    MEMORY = "memory"  # the kernel OOM-killed a process of the attempt's cgroup
    SIGNAL = "signal"  # killed by a signal, for no reason koderz measured
    EXIT = "exit"  # exited on its own


@dataclass(frozen=True)
class Measured:
    """What the trusted side saw of one attempt when it ended."""

    cpu_limit: float
    cpu_seconds: float | None  # cgroup usage, or the reaper's rusage; None where neither exists
    out_of_memory: bool
    wall_expired: bool
    exit_code: int | None  # None: still running when the backstop expired


@dataclass(frozen=True)
class Stop:
    """How an attempt ended; ``code`` is the exit code or the signal number."""

    kind: StopKind
    code: int = 0

    @classmethod
    def of(cls, measured: Measured) -> Stop:
        if measured.out_of_memory:
            return cls(StopKind.MEMORY)
        if measured.cpu_seconds is not None and measured.cpu_seconds >= measured.cpu_limit - CPU_TOLERANCE:
            return cls(StopKind.CPU)
        if measured.wall_expired or measured.exit_code is None:
            return cls(StopKind.WALL)
        code = measured.exit_code
        if code < 0 or code > 128:
            return cls(StopKind.SIGNAL, -code if code < 0 else code - 128)
        return cls(StopKind.EXIT, code)

    def status(self, cpu_limit: float, memory: str) -> tuple[Status, str]:
        """The verdict's status and error message."""
        if self.kind is StopKind.MEMORY:
            return Status.MEMORY, f"memory limit exceeded ({memory} per attempt)"
        if self.kind is StopKind.CPU:
            return Status.TIMEOUT, f"CPU time limit of {cpu_limit:g} s exceeded"
        if self.kind is StopKind.WALL:
            return Status.TIMEOUT, "wall-clock backstop exceeded (the program was waiting, or starved of CPU)"
        if self.kind is StopKind.EXIT:
            return Status.ERROR, f"the program exited (code {self.code}) before it answered every test"
        return Status.KILLED, f"the program was killed by {_signal_name(self.code)} before it answered every test"

    def describe(self) -> str:
        """A few words for a harness error (the attempt ended before it set itself up)."""
        if self.kind is StopKind.SIGNAL:
            return f"killed by {_signal_name(self.code)}"
        return f"exit code {self.code}" if self.kind is StopKind.EXIT else f"{self.kind} limit"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
