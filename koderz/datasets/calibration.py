"""The machine's speed as one figure: the CPU seconds of a fixed pure-Python workload.

Stored with the ground truth beside the canonical solutions' measured times, and measured
again where attempts run: their ratio scales each input's time budget to the machine at hand.
"""

from __future__ import annotations

import time

ROUNDS = 3
STEPS = 300_000


def workload_seconds() -> float:
    """CPU seconds of the workload, the best of ``ROUNDS`` (a few tens of milliseconds in all),
    counted for the calling thread alone (other threads of the process may be busy meanwhile)."""
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.thread_time()
        total = 0
        for step in range(STEPS):
            total += step * step % 7
        best = min(best, time.thread_time() - started)
    return max(best, 1e-6)
