"""koderz: config-driven experiment runner for code-generation models."""

import time

__version__ = "0.1.0"


def _busy_seconds() -> float:
    """Seconds this process has run or waited for a CPU (Linux schedstat); its CPU time elsewhere."""
    try:
        with open("/proc/self/schedstat", encoding="ascii") as stats:
            on_cpu, waiting = stats.read().split()[:2]
        return (int(on_cpu) + int(waiting)) / 1e9
    except (OSError, ValueError):
        return time.process_time()


# when koderz was first imported in this process, and the seconds the process had been running or
# runnable by then (``koderz.timing.interpreter_start`` finds the interpreter's start from them)
IMPORTED = (time.time(), _busy_seconds())
