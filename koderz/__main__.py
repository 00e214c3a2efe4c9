"""``python -m koderz [overrides]``: the Hydra app (one run, or a sweep with ``-m``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from koderz.config import register
from koderz.errors import ConfigError, ExitCode, KoderzError

log = logging.getLogger("koderz")
CONF_DIR = Path(__file__).resolve().parent / "conf"
ROLES = ("spec_model", "checkpoint_model", "baseline_model")
GROUPS = {
    "model": "model",
    "spec_model": "model",
    "baseline_model": "model",
    "checkpoint_model": "model",
    "dataset": "dataset",
    "mode": "mode",
    "cortex": "cortex",
    "tracking": "tracking",
    "experiment": "experiment",
    "hparams_search": "hparams_search",
}

register()


def rewrite_role_overrides(args: list[str]) -> list[str]:
    """``spec_model=X`` / ``checkpoint_model=X`` / ``baseline_model=X`` choose a conf/model file for
    that role; ``resume=FOLDER`` runs in that folder (its log is appended, its .hydra kept)."""
    out = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key in ROLES:
            arg = f"model@{key}={value}"
        out.append(arg)
        if sep and key == "resume" and value:
            out += [f"hydra.run.dir={value}", "hydra.output_subdir=null"]
    return out


def check_group_options(args: list[str]) -> None:
    """One clear line for an unknown config-group option (before Hydra's multi-line error)."""
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or arg.startswith("-"):
            continue
        group_key = key.lstrip("+~").split("@")[-1] if "@" in key else key.lstrip("+~")
        group = GROUPS.get(group_key) if "." not in group_key else None
        if "@" in key:
            group = GROUPS.get(key.lstrip("+~").split("@")[0])
        if group is None:
            continue
        options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        choices = value.removeprefix("choice(").removesuffix(")").split(",") if value else [value]
        for choice in choices:
            if choice.strip() not in options:
                raise ConfigError(
                    f"{key}={choice.strip()}: no such option in conf/{group}/ (choose from {', '.join(options)})"
                )


@hydra.main(version_base=None, config_path=str(CONF_DIR), config_name="config")
def app(cfg: DictConfig) -> Any:
    """One job; returns (pass_rate, cost) for optimizing sweepers."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    live = None
    try:
        plan, resuming, applied = _plan(cfg, list(hydra_cfg.overrides.task))
        if not plan.config.tracking.enabled or not plan.mode.spec.runs_problems:
            _cancel_early_worker()
        if resuming:
            from koderz.resume import nothing_to_resume

            finished = nothing_to_resume(Path(cfg.resume))
            if finished:
                sys.stderr.write(f"koderz: {finished}\n")
                return None
        if not plan.mode.spec.runs_problems:
            from koderz.speed_mode import run_speed_mode

            asyncio.run(run_speed_mode(plan, run_dir))
            return None
        from koderz.runner import Runner

        live = _start_tracking(plan, run_dir, hydra_cfg) if plan.config.tracking.enabled else None
        runner = Runner(plan, run_dir, resuming=resuming, overrides=applied, observers=[live] if live else [])
        try:
            outcome = asyncio.run(runner.run())
        except KoderzError:
            if live is not None and not cfg.resume:
                live.discard()
            raise
    except KoderzError as exc:
        _cancel_early_worker()
        if not cfg.resume:
            _discard(run_dir)
        sys.stderr.write(f"koderz: error: {exc}\n")
        sys.exit(ExitCode.BAD_INPUT)
    if live is not None and not live.finish():
        sys.exit(ExitCode.INTERRUPTED)
    if outcome.exit_code and hydra_cfg.mode != RunMode.MULTIRUN:
        sys.exit(outcome.exit_code)
    return outcome.summary.pass_rate, outcome.summary.cost.total


def _discard(run_dir: Path) -> None:
    """A run that never started leaves no folder behind (nor an empty date folder above it)."""
    logging.shutdown()  # closes koderz.log
    shutil.rmtree(run_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        run_dir.parent.rmdir()


def _plan(cfg: DictConfig, overrides: list[str]) -> tuple[Any, bool, list[str]]:
    """The plan of this job: from the command line, or from the folder being resumed."""
    from koderz.plan import Plan

    if not cfg.resume:
        return Plan.build(cfg), False, []
    from koderz.resume import resume_config

    config, applied = resume_config(Path(cfg.resume), cfg, overrides)
    return Plan.build(config), True, applied


def _start_tracking(plan: Any, folder: Path, hydra_cfg: Any) -> Any:
    """The MLflow worker that logs the run while it runs (``koderz.tracking.live``)."""
    from koderz.tracking.callback import hydra_job_tags, parent_run_id_for
    from koderz.tracking.live import LiveTracking

    sweep_dir = hydra_cfg.sweep.dir if hydra_cfg.mode == RunMode.MULTIRUN else None
    worker = _EARLY_WORKER.pop() if _EARLY_WORKER else None
    return LiveTracking.start(
        folder, plan.config.tracking, parent_run_id=parent_run_id_for(sweep_dir), tags=hydra_job_tags(), worker=worker
    )


_EARLY_WORKER: list[Any] = []  # the tracking worker main() started before Hydra composed the config
NO_EARLY_WORKER = ("-m", "--multirun", "-h", "--help", "--hydra-help", "--cfg", "-c", "--info", "--shell-completion")


def _early_worker(args: list[str]) -> None:
    """Start the tracking worker now for a single run that tracks (mlflow's imports then overlap
    the run's start-up); a run whose command line says otherwise (tracking off, a sweep, a
    resume, help) starts none here."""
    for arg in args:
        key, _, value = arg.partition("=")
        if arg.split("=")[0] in NO_EARLY_WORKER or key in ("resume", "+resume"):
            return
        if (key, value) in (("tracking", "off"), ("mode", "speed")) or (
            key == "tracking.enabled" and value.lower() != "true"
        ):
            return
    from koderz.tracking.live import LiveTracking

    _EARLY_WORKER.append(LiveTracking.spawn())


def _cancel_early_worker() -> None:
    """The run needs no tracking after all: the early worker ends without touching any store."""
    if _EARLY_WORKER:
        from koderz.tracking.live import LiveTracking

        LiveTracking.cancel(_EARLY_WORKER.pop())


def main() -> None:
    """Console-script entry point (``koderz`` = ``python -m koderz``)."""
    args = rewrite_role_overrides(sys.argv[1:])
    try:
        check_group_options(args)
    except ConfigError as exc:
        sys.stderr.write(f"koderz: error: {exc}\n")
        sys.exit(2)
    sys.argv = [sys.argv[0], *args]
    _early_worker(args)
    app()


if __name__ == "__main__":
    main()
