"""Hydra callback: one MLflow parent run per multirun, with every job's run nested under it.

``on_multirun_start`` opens the parent run and hands its id to the jobs twice: in the
environment (``KODERZ_MLFLOW_PARENT_RUN_ID``, inherited by basic and joblib workers) and
in ``<sweep_dir>/mlflow_parent_run_id`` (for launchers whose workers do not inherit the
environment). A job finds it with :func:`parent_run_id_for`. ``on_multirun_end`` logs a
summary table of the children on the parent and ends it; after a Ctrl-C, which Hydra does not
pass to callbacks, :func:`end_interrupted_sweeps` ends it KILLED from what the environment
holds (the parent's id and its store's settings).

Hydra turns exceptions raised in callbacks into warnings, so failures here are caught,
logged once, and never stop the sweep.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from koderz.config import TrackingConfig
from koderz.tracking.names import MlflowStatus, Tag

log = logging.getLogger(__name__)

PARENT_ENV = "KODERZ_MLFLOW_PARENT_RUN_ID"
PARENT_TRACKING_ENV = "KODERZ_MLFLOW_PARENT_TRACKING"  # the parent's TrackingConfig as JSON
PARENT_FILE = "mlflow_parent_run_id"
SWEPT_ENV = "KODERZ_SWEPT_KEYS"
SWEPT_FILE = "swept_keys"


def parent_run_id_for(sweep_dir: str | Path | None) -> str | None:
    """The sweep's parent run id: the environment first, then the sweep folder's file."""
    if os.environ.get(PARENT_ENV):
        return os.environ[PARENT_ENV]
    if sweep_dir is None:
        return None
    path = Path(sweep_dir) / PARENT_FILE
    if path.is_file():
        return path.read_text().strip() or None
    return None


def hydra_job_tags() -> dict[str, str]:
    """Tags for the current Hydra job (overrides, sweep id, job number); {} outside Hydra."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return {}
    hc = HydraConfig.get()
    tags = {Tag.OVERRIDES.value: " ".join(hc.overrides.task)}
    if hc.mode == RunMode.MULTIRUN:
        tags[Tag.SWEEP_ID] = str(Path(hc.sweep.dir).resolve())
        tags[Tag.JOB_NUM] = str(hc.job.num)
        swept = _swept_keys(hc.sweep.dir)
        tags[Tag.VARIANT] = " ".join(o for o in hc.overrides.task if o.split("=", 1)[0] in swept)
    return tags


def _swept_keys(sweep_dir: str) -> set[str]:
    """The keys the sweep varies (written by the callback at the sweep's start)."""
    text = os.environ.get(SWEPT_ENV)
    path = Path(sweep_dir) / SWEPT_FILE
    if text is None and path.is_file():
        text = path.read_text()
    return set((text or "").split())


def tracking_enabled(config: DictConfig) -> bool:
    """True when the composed config has a ``tracking`` group that is not switched off."""
    tracking = config.get("tracking")
    return isinstance(tracking, DictConfig) and bool(tracking.get("enabled", True))


class MlflowSweepCallback(Callback):
    """Open one MLflow parent run per multirun and summarise its children at the end."""

    def __init__(self) -> None:
        self._parent_run_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not tracking_enabled(config):
            return
        sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        try:
            from koderz.tracking.mlflow_tracker import start_sweep_run

            dataset = str(OmegaConf.select(config, "dataset.name", default="default"))
            settings = OmegaConf.to_object(config.tracking)
            assert isinstance(settings, TrackingConfig)
            overrides = list(config.hydra.overrides.task)
            swept = [o for o in overrides if "," in o or "(" in o]  # the overrides with several values
            tags = {
                Tag.SWEEP_ID.value: str(sweep_dir),
                Tag.SWEEP.value: "parent",
                Tag.OVERRIDES.value: " ".join(overrides),
            }
            name = f"sweep {' '.join(swept or overrides)[:120]} {sweep_dir.name}".strip()  # by what it sweeps
            run_id = start_sweep_run(settings, dataset, name, tags)
        except Exception as err:  # noqa: BLE001 - the sweep goes on without tracking
            log.warning("MLflow sweep parent run not opened; jobs log unnested: %s", err)
            return
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / PARENT_FILE).write_text(run_id + "\n")
        os.environ[PARENT_ENV] = run_id
        os.environ[PARENT_TRACKING_ENV] = json.dumps(dataclasses.asdict(settings))
        keys = " ".join(o.split("=", 1)[0] for o in swept)
        (sweep_dir / SWEPT_FILE).write_text(keys + "\n")
        os.environ[SWEPT_ENV] = keys
        self._parent_run_id = run_id
        log.info("MLflow parent run %s for sweep %s", run_id, sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._parent_run_id is not None and os.environ.get(PARENT_ENV) == self._parent_run_id:
            _end_parent(MlflowStatus.FINISHED)
        self._parent_run_id = None


def end_interrupted_sweeps() -> None:
    """Ctrl-C stopped a sweep before Hydra's end: its parent run ends KILLED, with what finished."""
    _end_parent(MlflowStatus.KILLED)


def _end_parent(status: MlflowStatus) -> None:
    """Summarise the children on the open parent run (named in the environment); end it with ``status``."""
    run_id = os.environ.pop(PARENT_ENV, None)
    settings = os.environ.pop(PARENT_TRACKING_ENV, None)
    os.environ.pop(SWEPT_ENV, None)
    if not run_id or settings is None:
        return
    try:
        from koderz.tracking.mlflow_tracker import finish_sweep_run

        children = finish_sweep_run(TrackingConfig(**json.loads(settings)), run_id, status)
    except Exception as err:  # noqa: BLE001
        log.warning("MLflow sweep summary not logged on parent run %s: %s", run_id, err)
        return
    log.info("MLflow parent run %s (%s): %d child runs", run_id, status, children)
