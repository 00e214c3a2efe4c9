"""Which BigCodeBench tasks can run in the library environment, checked before any model call.

A task's ``libs`` names the top-level modules it imports. Each must be in the standard library
or findable on the library paths bound into the sandbox (found by the import system's path
finder, without importing anything). Tasks with a missing library cannot run: the caller lists
them in one line, or skips them as ``not_run`` with :func:`not_run_reason`, never blaming the model.
"""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from koderz.datasets.bigcodebench import task_of
from koderz.datasets.problem import Problem

NETWORK_LIBS = frozenset({"requests", "urllib", "socket", "http", "smtplib", "ftplib", "mechanize", "wikipedia"})


@dataclass(frozen=True)
class TaskEnvironment:
    task_id: str
    missing: tuple[str, ...]  # libraries the environment lacks
    network: bool  # the task uses a library that reaches the network (the sandbox has none)


def check_environment(problems: Sequence[Problem], library_paths: Sequence[str]) -> list[TaskEnvironment]:
    """For each task, the libraries it declares that the environment cannot import."""
    found: dict[str, bool] = {}
    report = []
    for problem in problems:
        libs = task_of(problem).libs
        for lib in libs:
            if lib not in found:
                found[lib] = _importable(lib, library_paths)
        missing = tuple(lib for lib in libs if not found[lib])
        report.append(TaskEnvironment(problem.task_id, missing, bool(NETWORK_LIBS & set(libs))))
    return report


def unrunnable_line(report: Sequence[TaskEnvironment]) -> str | None:
    """One line naming the tasks that cannot run and what they lack; None when all can."""
    lacking = [r for r in report if r.missing]
    if not lacking:
        return None
    shown = "; ".join(f"{r.task_id} ({', '.join(r.missing)})" for r in lacking[:20])
    more = f"; and {len(lacking) - 20} more" if len(lacking) > 20 else ""
    return f"{len(lacking)} BigCodeBench task(s) cannot run in this library environment: {shown}{more}"


def not_run_reason(entry: TaskEnvironment) -> str | None:
    """The ``not_run`` reason of a task that cannot run here (None when it can)."""
    if entry.missing:
        return f"library environment lacks {', '.join(entry.missing)}"
    return None


def _importable(module: str, library_paths: Sequence[str]) -> bool:
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return True
    return importlib.machinery.PathFinder.find_spec(top, list(library_paths)) is not None
