"""``python -m koderz [overrides]``: the Hydra app (one run, or a sweep with ``-m``)."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from koderz.config import register
from koderz.errors import ConfigError, KoderzError

log = logging.getLogger("koderz")
CONF_DIR = Path(__file__).resolve().parent / "conf"
GROUPS = {
    "model": "model",
    "spec_model": "model",
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
    """``spec_model=X`` / ``checkpoint_model=X`` choose a conf/model file for that role."""
    out = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key in ("spec_model", "checkpoint_model"):
            arg = f"model@{key}={value}"
        out.append(arg)
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
    try:
        if cfg.mode.name == "speed":
            from koderz.speed_mode import run_speed_mode

            asyncio.run(run_speed_mode(cfg, run_dir))
            return None
        from koderz.runner import Runner

        runner = Runner(cfg, run_dir)
        summary = asyncio.run(runner.run())
    except KoderzError as exc:
        sys.stderr.write(f"koderz: error: {exc}\n")
        sys.exit(2)
    if cfg.tracking.enabled:
        _track(cfg, runner.folder_path, hydra_cfg)
    return summary["pass_rate"], summary["cost"]["total"]


def _track(cfg: DictConfig, folder: Path, hydra_cfg: Any) -> None:
    from koderz.tracking.callback import hydra_job_tags, parent_run_id_for
    from koderz.tracking.mlflow_tracker import log_run_folder

    sweep_dir = hydra_cfg.sweep.dir if hydra_cfg.mode.name == "MULTIRUN" else None
    log_run_folder(folder, cfg.tracking, parent_run_id=parent_run_id_for(sweep_dir), tags=hydra_job_tags())


def main() -> None:
    """Console-script entry point (``koderz`` = ``python -m koderz``)."""
    args = rewrite_role_overrides(sys.argv[1:])
    try:
        check_group_options(args)
    except ConfigError as exc:
        sys.stderr.write(f"koderz: error: {exc}\n")
        sys.exit(2)
    sys.argv = [sys.argv[0], *args]
    app()


if __name__ == "__main__":
    main()
