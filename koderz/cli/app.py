"""The Hydra app (``python -m koderz`` / ``koderz``): compose, check, run.

Configs live in the package (``pkg://koderz.conf``); ``--config-dir DIR`` or
``hydra.searchpath=[file://DIR]`` adds a user's own groups and options. Hydra normally
prints its errors itself (several lines, exit code 1); ``main`` asks it to raise them
instead (``HYDRA_FULL_ERROR``) and reports every bad input as one line with exit code 2.
A user who sets ``HYDRA_FULL_ERROR=1`` gets the full traceback, as with any Hydra app.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from koderz.cli import argv, checks, dirname, oneline, sweep_outcome, tracking_start
from koderz.config import register
from koderz.errors import ExitCode, KoderzError

log = logging.getLogger(__name__)

register()
dirname.register()


class JobCrashed(Exception):
    """An unexpected exception inside a job: a bug, reported with its traceback (exit code 1)."""


# A one-run job's KoderzError and exit code: returned to ``main`` this way, not raised through
# Hydra (which would print a line of its own before ``main`` prints the one line).
_run_failure: list[KoderzError] = []
_run_exit: list[ExitCode] = []


@hydra.main(version_base=None, config_path="pkg://koderz.conf", config_name="config")
def app(cfg: DictConfig) -> Any:
    """One job; returns (pass_rate, cost) for optimizing sweepers."""
    started = time.time()  # a sweep's job counts from here, not from the process's start
    hydra_cfg = HydraConfig.get()
    try:
        selected = checks.check_job(cfg, hydra_cfg.runtime.choices)
        _header(cfg, selected, hydra_cfg)
        return _run(cfg, hydra_cfg, started if hydra_cfg.mode == RunMode.MULTIRUN else None)
    except KoderzError as exc:
        tracking_start.cancel_early()
        if hydra_cfg.mode != RunMode.MULTIRUN:
            if not cfg.resume:
                _discard(Path(hydra_cfg.runtime.output_dir))
            _run_failure.append(exc)
            return None
        log.error("job %s failed: %s", hydra_cfg.job.num, exc)  # the sweep goes on; main reports the first
        raise
    except Exception as exc:
        raise JobCrashed(f"{type(exc).__name__}: {exc}") from exc


def _header(cfg: DictConfig, selected: int | None, hydra_cfg: Any) -> None:
    """One line as soon as the job is checked: what runs, and where its record goes."""
    if cfg.resume:  # the runner says so once it is sure there is something to resume
        return
    what = f"{selected} {cfg.dataset.name} problems" if selected is not None else "the speed test"
    log.info(
        "koderz: %s on %s (%s, concurrency %s), run folder %s",
        cfg.model.name,
        what,
        cfg.mode.name,
        cfg.concurrency,
        hydra_cfg.runtime.output_dir,
    )


def _run(cfg: DictConfig, hydra_cfg: Any, started: float | None) -> Any:
    """The job; ``started``: a sweep job's start (None: a single run, timed from the interpreter's)."""
    from koderz.plan import Plan

    run_dir = Path(hydra_cfg.runtime.output_dir)
    applied: list[str] = []
    if cfg.resume:
        from koderz.resume import nothing_to_resume, resume_config

        config, applied = resume_config(Path(cfg.resume), cfg, list(hydra_cfg.overrides.task))
        finished = nothing_to_resume(Path(cfg.resume))
        if finished:
            sys.stderr.write(f"koderz: {finished}\n")
            return None
        plan = Plan.build(config)
    else:
        plan = Plan.build(cfg)
    if not plan.config.tracking.enabled or not plan.mode.spec.runs_problems:
        tracking_start.cancel_early()
    if not plan.mode.spec.runs_problems:
        from koderz.speed_mode import run_speed_mode

        asyncio.run(run_speed_mode(plan, run_dir, started))
        return None
    from koderz.runner import Runner

    live = tracking_start.start(run_dir, plan.config.tracking, hydra_cfg) if plan.config.tracking.enabled else None
    runner = Runner(
        plan, run_dir, resuming=bool(cfg.resume), overrides=applied, observers=[live] if live else [], started=started
    )
    try:
        outcome = asyncio.run(runner.run())
    except KoderzError:
        if live is not None and not cfg.resume:
            live.discard()  # the run never started: no MLflow run either
        raise
    exit_code = outcome.exit_code
    if live is not None:
        flush_began = time.time()
        if not live.finish():
            exit_code = ExitCode.INTERRUPTED
        _count_tracking_flush(outcome.folder, flush_began, time.time())
    if hydra_cfg.mode != RunMode.MULTIRUN:
        _run_exit.append(exit_code)
    elif exit_code == ExitCode.INTERRUPTED:
        raise KeyboardInterrupt  # Ctrl-C stops the sweep, not just this job
    return outcome.summary.pass_rate, outcome.summary.cost.total


def _count_tracking_flush(folder: Path, began: float, ended: float) -> None:
    """The final MLflow flush ran after the run's records were written: its time joins the
    run's timing (MLflow holds it as the ``timing.tracking.flush`` metric)."""
    from koderz.records import RunFolder
    from koderz.timing import add_closing_phase
    from koderz.vocab import Phase

    timing = add_closing_phase(RunFolder.existing(folder), Phase.TRACKING_FLUSH, began, ended)
    if timing is not None:
        log.info("MLflow flush %.2f s; the run took %.2f s in all", ended - began, timing.total_duration)


def _discard(run_dir: Path) -> None:
    """A run that never started leaves no folder behind (nor an empty date folder above it)."""
    logging.shutdown()  # closes koderz.log
    shutil.rmtree(run_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        run_dir.parent.rmdir()


def _interrupted() -> None:
    """Ctrl-C outside a run's own handling (composing the config, between a sweep's jobs)."""
    if "koderz.tracking.callback" in sys.modules:
        from koderz.tracking.callback import end_interrupted_sweeps

        end_interrupted_sweeps()
    line = sweep_outcome.interrupted_line()
    sys.stderr.write(f"koderz: interrupted{'; ' + line if line else ''}\n")
    sys.exit(ExitCode.INTERRUPTED)


def main() -> None:
    """Console-script entry point (``koderz`` = ``python -m koderz``)."""
    typed = sys.argv[1:]
    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its errors instead of printing them
    # a hydra.searchpath entry that does not exist is an error, as a missing --config-dir is
    warnings.filterwarnings("error", message=r"provider=.* is not available", category=UserWarning)
    try:
        args = argv.expand_roles(typed)
        argv.check_flags(args)
        sys.argv = [sys.argv[0], *args]
        tracking_start.spawn_early(args)
        app()
        if _run_failure:
            raise _run_failure[0]
        if _run_exit and _run_exit[0]:
            sys.exit(_run_exit[0])
        if sweep_outcome.worst and sweep_outcome.worst[0]:
            sys.exit(sweep_outcome.worst[0])
    except KeyboardInterrupt:
        _interrupted()
    except JobCrashed:
        raise
    except Exception as exc:
        if full_error:
            raise
        sys.stderr.write(f"koderz: error: {oneline.describe(exc, typed)}\n")
        sys.exit(ExitCode.BAD_INPUT)
    finally:
        tracking_start.cancel_early()  # a command line Hydra refused never hands it a run
        # the heap is left to the OS: collecting it at exit took 0.45 s after the job's last act
        gc.freeze()
