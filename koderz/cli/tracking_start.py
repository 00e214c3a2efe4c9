"""Starting the run's MLflow worker (``koderz.tracking.live``) from the command line.

A single run that tracks starts its worker *before* Hydra composes the config, so mlflow's
imports (seconds) overlap the run's own start-up; the job then hands it the run, or cancels it
when the composed config turns out to need no tracking.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.types import RunMode

from koderz.config import TrackingConfig

if TYPE_CHECKING:
    from koderz.tracking.live import Worker

# a command line with one of these starts no early worker (sweeps start one per job)
NO_EARLY_WORKER = ("-m", "--multirun", "-h", "--help", "--hydra-help", "--cfg", "-c", "--info", "--shell-completion")

_early: list[Worker] = []


def spawn_early(args: list[str]) -> None:
    """Start the worker now unless the command line says the run is not a single tracked run
    (tracking off, a sweep, a resume, the speed test, help)."""
    for arg in args:
        key, _, value = arg.partition("=")
        if key in NO_EARLY_WORKER or key in ("resume", "+resume"):
            return
        if (key, value) in (("tracking", "off"), ("mode", "speed")) or (
            key == "tracking.enabled" and value.lower() != "true"
        ):
            return
    from koderz.tracking.live import LiveTracking

    _early.append(LiveTracking.spawn())


def cancel_early() -> None:
    """The run needs no tracking after all: the early worker ends without touching any store."""
    if _early:
        from koderz.tracking.live import LiveTracking

        LiveTracking.cancel(_early.pop())


def start(folder: Path, tracking: TrackingConfig, hydra_cfg: Any) -> Any:
    """The ``LiveTracking`` that logs ``folder`` while the run runs (the early worker, or a new one)."""
    from koderz.tracking.callback import hydra_job_tags, parent_run_id_for
    from koderz.tracking.live import LiveTracking

    sweep_dir = hydra_cfg.sweep.dir if hydra_cfg.mode == RunMode.MULTIRUN else None
    worker = _early.pop() if _early else None
    return LiveTracking.start(
        folder, tracking, parent_run_id=parent_run_id_for(sweep_dir), tags=hydra_job_tags(), worker=worker
    )
