"""``resume=RUN_FOLDER``: the run's own config, with only operational settings allowed to change.

A resumed run must measure the same experiment, so its config comes from its folder. What may
change is how it reaches things — endpoints, keys, timeouts, retries, concurrency, where it logs —
because a server may have moved or restarted since. An override that changes nothing (one of the
run's own command line, or a value equal to the saved one) is accepted silently, so the original
command with ``resume=DIR`` appended works; any other override is refused with one line.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, ListConfig, OmegaConf

from koderz.config import RunConfig
from koderz.errors import ConfigError
from koderz.records import RunFolder
from koderz.vocab import PartStatus

ROLES = ("model", "spec_model", "checkpoint_model")
ROLE_KEYS = (
    "base_url",
    "host",
    "api_key_env",
    "timeout",
    "max_retries",
    "retry_backoff",
    "keep_alive",
    "max_concurrency",
    "breaker_failures",
    "breaker_wait",
)
OPERATIONAL = (
    "concurrency",
    "debug",
    "timing.*",
    "sandbox.max_processes",
    "tracking.uri",
    "tracking.http_timeout",
    "tracking.http_retries",
    "cortex.url",
    "cortex.timeout",
    *(f"{role}.{key}" for role in ROLES for key in ROLE_KEYS),
)


def operational(key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in OPERATIONAL)


def resume_config(folder: Path, composed: DictConfig, overrides: list[str]) -> tuple[RunConfig, list[str]]:
    """The folder's config with the operational ``overrides`` applied (values from ``composed``,
    the config Hydra built from the command line); the overrides applied are returned too."""
    run = RunFolder(folder)
    if not run.is_run_folder():
        raise ConfigError(f"resume={folder}: not a koderz run folder (no results.jsonl and config.yaml)")
    saved = OmegaConf.merge(OmegaConf.structured(RunConfig), run.read_config())
    applied = []
    original = set(run.read_overrides())
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if key == "resume" or key.startswith("hydra."):
            continue
        if not operational(key) and (override.input_line in original or _unchanged(override, composed, saved)):
            continue
        if not operational(key):
            raise ConfigError(
                f"resume={folder}: {override.input_line} would change the experiment; on resume only "
                "endpoints, keys, timeouts, retries, concurrency and logging may change"
            )
        OmegaConf.update(saved, key, OmegaConf.select(composed, key), merge=False)
        applied.append(override.input_line or key)
    saved.resume = str(folder)
    config = OmegaConf.to_object(saved)
    assert isinstance(config, RunConfig)
    return config, applied


def _unchanged(override: Override, composed: DictConfig, saved: DictConfig | ListConfig) -> bool:
    """Whether the config node ``override`` sets (a key, or a group's package) has its saved value."""
    path = override.key_or_group if not override.package else override.package
    path = path.removeprefix("_global_.").removeprefix("_global_")
    if not path:
        return False  # a group of the global package (experiment=...): its keys are not known here
    try:
        given = OmegaConf.select(composed, path, throw_on_missing=True)
        kept = OmegaConf.select(saved, path, throw_on_missing=True)
        given, kept = (OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v for v in (given, kept))
    except Exception:  # noqa: BLE001 - a value that cannot be read is not known to be unchanged
        return False
    return given is not None and given == kept


def nothing_to_resume(folder: Path) -> str | None:
    """Why resuming ``folder`` would change nothing (a finished run, every problem answered), or None."""
    run = RunFolder(folder)
    state = run.read_state() if run.is_run_folder() else None
    if state is None or state.status is not PartStatus.FINISHED or not run.has_results():
        return None
    summary = run.read_results().summary
    if summary.unanswered or summary.not_run:
        return None
    return f"nothing to resume: {folder} is finished ({summary.answered} of {summary.problems} problems answered)"
