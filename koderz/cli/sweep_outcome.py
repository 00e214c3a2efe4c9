"""Hydra callback: what a sweep's jobs came to, one line on the console and the sweep's exit code.

The jobs of a sweep may run elsewhere (joblib processes, SLURM nodes, Ray workers), so their
outcome is read from their run folders under the sweep folder when the sweep ends: jobs that
were interrupted, jobs with problems left without a verdict, jobs that left no results. ``main``
exits with the worst code (``ExitCode``: 130, then 3), as a single run would.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from koderz.errors import ExitCode

log = logging.getLogger(__name__)

worst: list[ExitCode] = []  # set when a sweep ends; read by koderz.cli.app.main
running: list[Path] = []  # the sweep folder while a sweep runs


class SweepOutcome(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        running.append(Path(str(config.hydra.sweep.dir)))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        running.clear()
        code, line = sweep_outcome(Path(str(config.hydra.sweep.dir)))
        worst.append(code)
        (log.warning if code else log.info)("%s", line)


def interrupted_line() -> str | None:
    """For a sweep Ctrl-C stopped: what its jobs came to (None outside a sweep)."""
    if not running:
        return None
    return sweep_outcome(running.pop())[1]


def sweep_outcome(sweep_dir: Path) -> tuple[ExitCode, str]:
    """The sweep's exit code and its one-line account, from the run folders under ``sweep_dir``."""
    from koderz.records import RunFolder
    from koderz.report import exit_code

    interrupted, unanswered, complete, no_results = [], [], 0, []
    for state in sorted(sweep_dir.glob("**/run.json")):
        folder = RunFolder(state.parent)
        if not folder.has_results():
            no_results.append(state.parent.name)
            continue
        code = exit_code(folder.read_results().summary)
        if code == ExitCode.INTERRUPTED:
            interrupted.append(state.parent.name)
        elif code == ExitCode.UNANSWERED:
            unanswered.append(state.parent.name)
        else:
            complete += 1
    parts = [f"sweep {sweep_dir}: {complete} jobs complete"]
    if interrupted:
        parts.append(f"{len(interrupted)} interrupted ({', '.join(interrupted)})")
    if unanswered:
        parts.append(f"{len(unanswered)} with problems left without a verdict ({', '.join(unanswered)})")
    if no_results:
        parts.append(f"{len(no_results)} without results ({', '.join(no_results)})")
    if interrupted or unanswered or no_results:
        parts.append("finish each with resume=<its folder>")
    code = ExitCode.INTERRUPTED if interrupted else ExitCode.UNANSWERED if unanswered or no_results else ExitCode.OK
    return code, "; ".join(parts)
