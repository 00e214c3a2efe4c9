"""The Hydra app (``python -m koderz`` / ``koderz``): compose, check, run.

Configs live in the package (``pkg://koderz.conf``); ``--config-dir DIR`` or
``hydra.searchpath=[file://DIR]`` adds a user's own groups and options. Hydra normally
prints its errors itself (several lines, exit code 1); ``main`` asks it to raise them
instead (``HYDRA_FULL_ERROR``) and reports every bad input as one line with exit code 2.
A user who sets ``HYDRA_FULL_ERROR=1`` gets the full traceback, as with any Hydra app.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from koderz.cli import argv, checks, dirname, oneline
from koderz.config import register
from koderz.errors import KoderzError

log = logging.getLogger(__name__)

register()
dirname.register()


class JobCrashed(Exception):
    """An unexpected exception inside a job: a bug, reported with its traceback (exit code 1)."""


# A one-run job's KoderzError: returned to ``main`` this way, not raised through Hydra
# (which would print a line of its own before ``main`` prints the one line).
_run_failure: list[KoderzError] = []


@hydra.main(version_base=None, config_path="pkg://koderz.conf", config_name="config")
def app(cfg: DictConfig) -> Any:
    """One job; returns (pass_rate, cost) for optimizing sweepers."""
    hydra_cfg = HydraConfig.get()
    try:
        checks.check_job(cfg, hydra_cfg.runtime.choices)
        return _run(cfg, hydra_cfg)
    except KoderzError as exc:
        if hydra_cfg.mode != RunMode.MULTIRUN:
            _run_failure.append(exc)
            return None
        log.error("job %s failed: %s", hydra_cfg.job.num, exc)  # the sweep goes on; main reports the first
        raise
    except Exception as exc:
        raise JobCrashed(f"{type(exc).__name__}: {exc}") from exc


def _run(cfg: DictConfig, hydra_cfg: Any) -> Any:
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if cfg.mode.name == "speed":
        from koderz.speed_mode import run_speed_mode

        asyncio.run(run_speed_mode(cfg, run_dir))
        return None
    from koderz.runner import Runner

    runner = Runner(cfg, run_dir)
    summary = asyncio.run(runner.run())
    if cfg.tracking.enabled:
        _track(cfg, runner.folder_path, hydra_cfg)
    return summary["pass_rate"], summary["cost"]["total"]


def _track(cfg: DictConfig, folder: Path, hydra_cfg: Any) -> None:
    from koderz.tracking.callback import hydra_job_tags, parent_run_id_for
    from koderz.tracking.mlflow_tracker import log_run_folder

    sweep_dir = hydra_cfg.sweep.dir if hydra_cfg.mode == RunMode.MULTIRUN else None
    log_run_folder(folder, cfg.tracking, parent_run_id=parent_run_id_for(sweep_dir), tags=hydra_job_tags())


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
        app()
        if _run_failure:
            raise _run_failure[0]
    except JobCrashed:
        raise
    except Exception as exc:
        if full_error:
            raise
        sys.stderr.write(f"koderz: error: {oneline.describe(exc, typed)}\n")
        sys.exit(2)
