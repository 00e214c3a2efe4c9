"""A sweep's jobs checked before the sweep starts: a bad value in any job is one line and exit 2,
with no sweep folder, no MLflow parent run and no job run.

Hydra composes each job only when the launcher reaches it, after the sweep folder and the tracking
callback's parent run exist. Here Hydra itself (its override parser and its basic sweeper's
expansion, the same code the sweep will run) lists the jobs, and each is composed and checked as
the job would be. Sweeps that only a sampling sweeper can expand (``interval()``, optuna) are left
to Hydra.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, open_dict

from koderz.cli import checks

CONFIG_MODULE = "koderz.conf"


def check_sweep(args: Sequence[str]) -> int:
    """Compose and check every job of ``-m ARGS`` (raising the first problem); returns how many jobs
    were checked (0 when this is no sweep, or one only its sweeper can expand)."""
    parsed = get_args_parser().parse_args(list(args))
    if not parsed.multirun or parsed.help or parsed.hydra_help or parsed.cfg or parsed.info:
        return 0
    overrides = list(parsed.overrides)
    if any(o.partition("=")[0].lstrip("+~") in ("hydra/sweeper", "hparams_search") for o in overrides):
        return 0  # a sampling sweeper decides its jobs as it goes
    try:
        jobs = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(overrides), None)[0]
    except Exception:  # noqa: BLE001 - what the basic sweeper cannot expand is Hydra's to report
        return 0
    extra = [f"hydra.searchpath=[file://{Path(parsed.config_dir).resolve()}]"] if parsed.config_dir else []
    with initialize_config_module(CONFIG_MODULE, version_base=None):
        plugins = [o for o in jobs[0] if o.lstrip("+~").startswith("hydra/")]
        compose(
            parsed.config_name or "config", overrides=[*plugins, *extra], return_hydra_config=True
        )  # the sweep's own
        for job in jobs:
            cfg = compose(parsed.config_name or "config", overrides=[*job, *extra], return_hydra_config=True)
            _check(cfg)
    return len(jobs)


def _check(cfg: DictConfig) -> None:
    hydra_cfg = cfg.hydra
    checks.check_hydra(hydra_cfg.job.chdir)
    with open_dict(cfg):
        del cfg["hydra"]
    checks.check_job(cfg, hydra_cfg.runtime.choices)
