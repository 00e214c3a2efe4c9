"""Checks of a composed job config, before anything runs (no heavy import here).

Hydra has composed the config and type-checked every value against the schema; this
adds what composition cannot see: keys added with ``+`` or removed with ``~`` that the
schema does not have, mandatory values a chosen file leaves open (``???``), values that do
not resolve, ``config.validate``'s ranges, and the task selection against the dataset.
Each failure is one ``ConfigError``/``DatasetError`` naming the key and the value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from koderz.config import shard_of, validate
from koderz.datasets.benchmarks import BENCHMARKS, check_values
from koderz.datasets.files import task_ids
from koderz.datasets.selection import selected_ids
from koderz.errors import ConfigError, ModelError, ModelErrorKind
from koderz.models.credentials import check_credentials
from koderz.vocab import Mode

ROLES = ("model", "spec_model", "checkpoint_model", "baseline_model")


def check_job(cfg: DictConfig, choices: Mapping[str, Any]) -> int | None:
    """Raise the first problem of ``cfg``; ``choices`` are Hydra's chosen group options
    (``hydra.runtime.choices``: ``model``, ``model@spec_model``, ...). Returns how many problems
    the job selects (None when that is decided later: a resumed run, the speed test)."""
    try:
        return _check(cfg, choices)
    except OmegaConfBaseException as exc:  # a value that does not resolve (``seed=${nope}``)
        raise ConfigError(f"{exc.full_key}: {str(exc).splitlines()[0]}") from exc


def _check(cfg: DictConfig, choices: Mapping[str, Any]) -> int | None:
    for problem in _shape(cfg):
        raise ConfigError(problem)
    OmegaConf.to_container(cfg, resolve=True)
    for key in sorted(OmegaConf.missing_keys(cfg)):
        raise ConfigError(f"{key}: needs a value{_chosen_by(key, choices)} (add {key}=...)")
    for role in ROLES:
        node = cfg[role]
        if node.base_url_required and not node.base_url:
            raise ConfigError(
                f"{role}.base_url: needs a value{_chosen_by(role, choices)} (add {role}.base_url=http://HOST:PORT/v1)"
            )
    validate(cfg)
    _check_keys(cfg)
    if cfg.resume or not Mode(cfg.mode.name).spec.runs_problems:
        return None
    if cfg.dataset.name in BENCHMARKS:  # read from a file or the hub: selected once loaded
        data = cfg.dataset
        check_values(data.name, subset=data.subset, split=data.split, date_from=data.date_from, date_to=data.date_to)
        return None
    selected = selected_ids(task_ids(cfg.dataset.name), cfg.dataset.name, cfg.start, cfg.end, cfg.problems)
    if cfg.shard is None:
        return len(selected)
    index, count = shard_of(cfg.shard)
    return len(selected[index::count])


def check_hydra(job_chdir: bool | None) -> None:
    """Hydra settings koderz cannot honour: with ``hydra.job.chdir=true`` every run would keep its
    own MLflow store, memory and result cache (they live under ``outputs/`` of the launch folder)."""
    if job_chdir:
        raise ConfigError(
            "hydra.job.chdir=true: koderz keeps its stores (MLflow, memory, result cache) under outputs/ of the "
            "folder it starts in, so that runs compare; with chdir every run would get its own. Leave it false "
            "(each run's files are already in its run folder)"
        )


def _check_keys(cfg: DictConfig) -> None:
    """Every role's key, an environment lookup reported at once: one missing key is the provider's
    own message; several are named together, each with the roles that need it."""
    missing: dict[str, list[str]] = {}
    first: ModelError | None = None
    for role in _taking_part(cfg):
        try:
            check_credentials(cfg[role])
        except ModelError as exc:
            first = first or exc
            missing.setdefault(cfg[role].api_key_env, []).append(f"{role}={cfg[role].name}")
    if first is None:
        return
    if len(missing) == 1:
        raise first
    named = "; ".join(f"{env} (for {', '.join(roles)})" for env, roles in missing.items())
    exports = " ".join(f"{env}=<key>" for env in missing)
    raise ModelError(f"no API keys: {named} are not set; export {exports}", kind=ModelErrorKind.MISSING_KEY)


def _taking_part(cfg: DictConfig) -> list[str]:
    """The roles whose model this job calls (the spec and review roles only when they take part)."""
    spec = Mode(cfg.mode.name).spec
    roles = ["model"]
    if cfg.spec.enabled and spec.runs_problems:
        roles.append("spec_model")
    if cfg.checkpoints.enabled and spec.feedback:
        roles.append("checkpoint_model")
    return roles


def _shape(node: DictConfig, prefix: str = "") -> Iterator[str]:
    """Keys the schema does not know (``+foo=1``) or that were deleted (``~debug``)."""
    schema = OmegaConf.get_type(node)
    names = [str(name) for name in node]
    if schema is not None and dataclasses.is_dataclass(schema):
        fields = [f.name for f in dataclasses.fields(schema)]
        for name in names:
            if name not in fields:
                yield f"{prefix}{name}: koderz has no such key (it would be ignored)"
        for name in fields:
            if name not in names:
                yield f"{prefix}{name}: removed, but koderz needs it (drop ~{prefix}{name})"
    for key, child in node.items_ex(resolve=False):
        if isinstance(child, DictConfig):
            yield from _shape(child, f"{prefix}{key!s}.")


def _chosen_by(key: str, choices: Mapping[str, Any]) -> str:
    """`` (model=openai_compatible leaves it open)`` for a key inside a role's model file."""
    role = key.split(".")[0]
    choice = choices.get(role if role == "model" else f"model@{role}") if role in ROLES else None
    return f" ({role}={choice} leaves it open)" if choice else ""
