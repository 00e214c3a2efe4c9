"""Hydra callback: what a sweep's jobs came to, one line on the console and the sweep's exit code.

The jobs of a sweep may run elsewhere (joblib processes, SLURM nodes, Ray workers), so their
outcome is read from their run folders under the sweep folder when the sweep ends: jobs that
were interrupted, jobs with problems left without a verdict, jobs that left no results. The
sweep exits with the worst code (``ExitCode``: 130, then 3), as a single run would: the callback
raises ``SystemExit`` with it (it is listed first among the callbacks, so Hydra ends it last). A
job that Ctrl-C stopped raises ``SweepInterrupted``, naming the sweep folder for ``main``'s line.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from koderz.errors import ExitCode

log = logging.getLogger(__name__)


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a sweep's job: the sweep stops too."""

    def __init__(self, sweep_dir: Path) -> None:
        super().__init__(str(sweep_dir))
        self.sweep_dir = sweep_dir


class SweepOutcome(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        code, line = sweep_outcome(Path(str(config.hydra.sweep.dir)))
        (log.warning if code else log.info)("%s", line)
        if code:
            sys.exit(code)  # SystemExit passes Hydra's callback guard (it catches Exception)


def interrupted_line(interrupt: KeyboardInterrupt) -> str | None:
    """For a sweep Ctrl-C stopped in one of its jobs: what its jobs came to (None otherwise)."""
    if not isinstance(interrupt, SweepInterrupted):
        return None
    return sweep_outcome(interrupt.sweep_dir)[1]


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
    unfinished = (interrupted, "interrupted"), (unanswered, "with problems left without a verdict")
    for names, what in (*unfinished, (no_results, "without results")):
        if names:
            parts.append(f"{len(names)} {what} ({', '.join(names)})")
    if len(parts) > 1:
        parts.append("finish each with resume=<its folder>")
    code = ExitCode.INTERRUPTED if interrupted else ExitCode.UNANSWERED if unanswered or no_results else ExitCode.OK
    return code, "; ".join(parts)
