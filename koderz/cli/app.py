"""The Hydra app (``python -m koderz`` / ``koderz``): compose, check, run.

Configs live in the package (``pkg://koderz.conf``); ``--config-dir DIR`` or
``hydra.searchpath=[file://DIR]`` adds a user's own groups and options. Hydra normally
prints its errors itself (several lines, exit code 1); ``main`` asks it to raise them
instead (``HYDRA_FULL_ERROR``) and reports every bad input as one line with exit code 2.
A user who sets ``HYDRA_FULL_ERROR=1`` gets the full traceback, as with any Hydra app.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from koderz.cli import argv, checks, dirname, oneline, sweep_check, sweep_outcome
from koderz.config import register
from koderz.errors import ExitCode, KoderzError
from koderz.vocab import Mode

if TYPE_CHECKING:
    from koderz.plan import Plan
    from koderz.tracking.live import LiveTracking

log = logging.getLogger(__name__)

register()
dirname.register()


class JobCrashed(Exception):
    """An unexpected exception inside a job: a bug, reported with its traceback (exit code 1)."""


@dataclass
class JobOutcome:
    """A one-run job's KoderzError and exit code, handed to ``main`` instead of raised through Hydra
    (which would print a line of its own before ``main`` prints the one line)."""

    failure: KoderzError | None = None
    exit_code: ExitCode = ExitCode.OK


def job(cfg: DictConfig, outcome: JobOutcome) -> Any:
    """One job; returns (pass_rate, cost) for optimizing sweepers."""
    started = time.time()  # a sweep's job counts from here, not from the process's start
    hydra_cfg = HydraConfig.get()
    try:
        checks.check_hydra(hydra_cfg.job.chdir)
        selected = checks.check_job(cfg, hydra_cfg.runtime.choices)
        _header(cfg, selected, hydra_cfg)
        return _run(cfg, hydra_cfg, outcome, started if hydra_cfg.mode == RunMode.MULTIRUN else None)
    except KoderzError as exc:
        if hydra_cfg.mode != RunMode.MULTIRUN:
            if not cfg.resume:
                _discard(Path(hydra_cfg.runtime.output_dir), Path(hydra_cfg.runtime.cwd))
            outcome.failure = exc
            return None
        log.error("job %s failed: %s", hydra_cfg.job.num, exc)  # the sweep goes on; main reports the first
        raise
    except Exception as exc:
        raise JobCrashed(f"{type(exc).__name__}: {exc}") from exc


def _header(cfg: DictConfig, selected: int | None, hydra_cfg: Any) -> None:
    """One line as soon as the job is checked: what runs (the runner names the run folder once the
    models, data and sandbox are up: a run stopped before that leaves no folder to name)."""
    if cfg.resume:  # the runner says so once it is sure there is something to resume
        return
    if selected is not None:
        what = f"{selected} {cfg.dataset.name} problems"
    elif Mode(cfg.mode.name).spec.runs_problems:  # a benchmark's file: its tasks are counted once read
        what = f"{cfg.dataset.name} problems"
    else:
        what = "the speed test"
    log.info("koderz: %s on %s (%s, concurrency %s)", cfg.model.name, what, cfg.mode.name, cfg.concurrency)


def _run(cfg: DictConfig, hydra_cfg: Any, job_outcome: JobOutcome, started: float | None) -> Any:
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
    if not plan.mode.spec.runs_problems:
        from koderz.speed_mode import run_speed_mode

        asyncio.run(run_speed_mode(plan, run_dir, started))
        return None
    from koderz.runner import Runner

    live = _start_tracking(run_dir, plan, hydra_cfg) if plan.config.tracking.enabled else None
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
        if exit_code in (ExitCode.UNANSWERED, ExitCode.INTERRUPTED):  # the last line: what finishes the run
            sys.stderr.write(f"koderz: finish the run with: python -m koderz resume={outcome.folder}\n")
        job_outcome.exit_code = exit_code
    elif exit_code == ExitCode.INTERRUPTED:
        raise sweep_outcome.SweepInterrupted(Path(hydra_cfg.sweep.dir))  # Ctrl-C stops the sweep, not just this job
    return outcome.summary.pass_rate, outcome.summary.cost.total


def _start_tracking(run_dir: Path, plan: Plan, hydra_cfg: Any) -> LiveTracking:
    """The run's MLflow worker (``koderz.tracking.live``), started now that the config is checked:
    it imports mlflow while the run runs."""
    from koderz.tracking.callback import hydra_job_tags, parent_run_id_for
    from koderz.tracking.live import LiveTracking

    sweep_dir = hydra_cfg.sweep.dir if hydra_cfg.mode == RunMode.MULTIRUN else None
    return LiveTracking.start(
        run_dir, plan.config.tracking, parent_run_id=parent_run_id_for(sweep_dir), tags=hydra_job_tags()
    )


def _count_tracking_flush(folder: Path, began: float, ended: float) -> None:
    """The final MLflow flush ran after the run's records were written: its time joins the
    run's timing (MLflow holds it as the ``timing.tracking.flush`` metric)."""
    from koderz.records import RunFolder
    from koderz.timing import add_closing_phase
    from koderz.vocab import Phase

    timing = add_closing_phase(RunFolder.existing(folder), Phase.TRACKING_FLUSH, began, ended)
    if timing is not None:
        log.info("MLflow flush %.2f s; the run took %.2f s in all", ended - began, timing.total_duration)


def _discard(run_dir: Path, launched_in: Path) -> None:
    """A run that never started leaves no folder behind, nor the empty folders Hydra made above it
    (``outputs/runs/<date>``) up to the folder koderz was started in."""
    logging.shutdown()  # closes koderz.log
    os.chdir(launched_in)  # out of the run folder, should Hydra have changed into it
    shutil.rmtree(run_dir, ignore_errors=True)
    here = launched_in.resolve()
    for parent in run_dir.resolve().parents:
        if parent == here or here not in parent.parents:
            break
        try:
            parent.rmdir()  # only an empty folder goes
        except OSError:
            break


def _interrupted(interrupt: KeyboardInterrupt) -> None:
    """Ctrl-C: a sweep's job stopped by it (``SweepInterrupted``), or outside a run's own handling."""
    if "koderz.tracking.callback" in sys.modules:
        from koderz.tracking.callback import end_interrupted_sweeps

        end_interrupted_sweeps()
    line = sweep_outcome.interrupted_line(interrupt)
    sys.stderr.write(f"koderz: interrupted{'; ' + line if line else ''}\n")
    sys.exit(ExitCode.INTERRUPTED)


def main() -> None:
    """Console-script entry point (``koderz`` = ``python -m koderz``)."""
    typed = sys.argv[1:]
    outcome = JobOutcome()

    def app(cfg: DictConfig) -> Any:
        return job(cfg, outcome)

    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its errors instead of printing them
    # a hydra.searchpath entry that does not exist is an error, as a missing --config-dir is
    warnings.filterwarnings("error", message=r"provider=.* is not available", category=UserWarning)
    try:
        args = argv.expand_roles(typed)
        argv.check_flags(args)
        sweep_check.check_sweep(args)
        sys.argv = [sys.argv[0], *args]
        hydra.main(version_base=None, config_path="pkg://koderz.conf", config_name="config")(app)()
        if outcome.failure is not None:
            raise outcome.failure
        if outcome.exit_code:
            sys.exit(outcome.exit_code)
    except KeyboardInterrupt as interrupt:
        _interrupted(interrupt)
    except JobCrashed:
        raise
    except Exception as exc:
        if full_error:
            raise
        sys.stderr.write(f"koderz: error: {oneline.describe(exc, typed)}\n")
        sys.exit(ExitCode.BAD_INPUT)
    finally:
        # the heap is left to the OS: collecting it at exit took 0.45 s after the job's last act
        gc.freeze()
