"""The problems a run's ``dataset.*`` keys name, and what must hold before any model call.

A packaged dataset (HumanEval, HumanEval+, MBPP+) loads by name; BigCodeBench and LiveCodeBench
load from ``dataset.path`` (a file in the benchmark's format, a saved ``datasets`` folder) or the
hub. BigCodeBench's tasks import third-party libraries: :func:`library_paths` finds the
environment the user declares (``dataset.libraries``: a venv or a site-packages folder; unset:
this interpreter's, the ``koderz[bigcodebench]`` extra) and :func:`runnable` checks every
selected task's ``libs`` against it. Bad values and files are one ``ConfigError``/``DatasetError``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from koderz.bench.bcb_environment import check_environment, not_run_reason, unrunnable_line
from koderz.bench.bigcodebench import BigCodeBenchJudging
from koderz.bench.bigcodebench import library_paths as bound_paths
from koderz.config import DatasetConfig
from koderz.datasets import bigcodebench, livecodebench
from koderz.datasets.benchmarks import BENCHMARKS, check_values
from koderz.datasets.loaders import load_dataset
from koderz.datasets.problem import Problem
from koderz.errors import ConfigError, DatasetError

log = logging.getLogger(__name__)


def is_benchmark(cfg: DatasetConfig) -> bool:
    """Loaded from a file or the hub (not one of koderz's packaged datasets)."""
    return cfg.name in BENCHMARKS


def load_problems(cfg: DatasetConfig) -> tuple[Problem, ...]:
    """Every task of the dataset ``cfg`` names, in dataset order."""
    return load_benchmark(cfg) if is_benchmark(cfg) else load_dataset(cfg.name)


def load_benchmark(cfg: DatasetConfig) -> tuple[Problem, ...]:
    """The tasks ``cfg`` names; ``ConfigError``/``DatasetError`` (one line) for a bad value or file."""
    check_values(cfg.name, subset=cfg.subset, split=cfg.split, date_from=cfg.date_from, date_to=cfg.date_to)
    if cfg.name == bigcodebench.DATASET:
        source = bigcodebench.BigCodeBenchSource(
            path=cfg.path,
            subset=bigcodebench.Subset(cfg.subset),
            split=bigcodebench.Split(cfg.split),
            version=cfg.version or bigcodebench.DEFAULT_VERSION,
        )
        return bigcodebench.load(source)
    if cfg.name == livecodebench.DATASET:
        return livecodebench.load(
            livecodebench.LiveCodeBenchSource(
                path=cfg.path, version=cfg.version or "test", date_from=cfg.date_from, date_to=cfg.date_to
            )
        )
    raise ConfigError(f"dataset={cfg.name}: not one of {', '.join(BENCHMARKS)}")


def release(problems: Sequence[Problem]) -> str | None:
    """The benchmark release the tasks come from (BigCodeBench: the hub split, or ``sha256:...`` of
    a local file's tasks); None for the others."""
    for problem in problems:
        if problem.dataset == bigcodebench.DATASET:
            return bigcodebench.task_of(problem).release
    return None


def content_key(cfg: DatasetConfig, problems: Sequence[Problem], paths: Sequence[str]) -> str:
    """A benchmark's dataset version in the result cache key: a digest of every task as loaded
    (each field, so another task file or hub split, subset, split or date window is another key),
    of the ``dataset.*`` keys that choose and judge them, and, for BigCodeBench, of the library
    environment its tests import (the distributions installed in ``paths``, this Python's version)."""
    digest = hashlib.sha256()
    keys = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("path", "libraries", "skip_unrunnable")}
    digest.update(json.dumps(keys, sort_keys=True).encode() + b"\0")
    if cfg.name == bigcodebench.DATASET:
        found = bound_paths(BigCodeBenchJudging(library_paths=tuple(paths)))
        digest.update(json.dumps([sys.version, _distributions(found)]).encode() + b"\0")
    for problem in problems:
        row = json.dumps(dataclasses.asdict(problem), sort_keys=True, default=str, ensure_ascii=False)
        digest.update(row.encode("utf-8", "surrogatepass") + b"\0")
    return "sha256:" + digest.hexdigest()


def _distributions(paths: Sequence[str]) -> list[list[str]]:
    """Each library folder with the distributions installed there (name and version, by their metadata folders)."""
    installed = []
    for folder in paths:
        entries = Path(folder).iterdir() if Path(folder).is_dir() else iter(())
        installed.append([folder, *sorted(p.name for p in entries if p.name.endswith((".dist-info", ".egg-info")))])
    return installed


def library_paths(cfg: DatasetConfig) -> tuple[str, ...]:
    """The library folders bound read-only into the sandbox for ``dataset=bigcodebench``: the
    site-packages of the venv ``dataset.libraries`` names (of this Python's version), or that folder
    itself; () for other datasets or no value (the evaluator then takes this interpreter's)."""
    if cfg.name != bigcodebench.DATASET or not cfg.libraries:
        return ()
    root = Path(cfg.libraries).expanduser()
    if not root.is_dir():
        raise ConfigError(f"dataset.libraries={cfg.libraries}: no such folder (a venv or a site-packages folder)")
    if not (root / "pyvenv.cfg").is_file():
        return (str(root.resolve()),)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_packages = root / "lib" / version / "site-packages"
    if not site_packages.is_dir():
        raise ConfigError(
            f"dataset.libraries={cfg.libraries}: a venv without lib/{version}/site-packages "
            f"(its libraries must be built for this Python, {version})"
        )
    return (str(site_packages.resolve()),)


@dataclass(frozen=True)
class Runnable:
    """The selected tasks that run, and those left out (task id -> why: ``not_run`` by request)."""

    problems: list[Problem]
    skipped: dict[str, str]


def runnable(problems: list[Problem], cfg: DatasetConfig, paths: Sequence[str]) -> Runnable:
    """BigCodeBench: every task's ``libs`` against the library environment ``paths`` (before any
    model call). Tasks that cannot run are a ``DatasetError`` naming them in one line, or, with
    ``dataset.skip_unrunnable=true``, left out with their reason; tasks that use the network (the
    sandbox has none) are named in a warning. Other datasets: every task runs."""
    if cfg.name != bigcodebench.DATASET:
        return Runnable(problems, {})
    report = check_environment(problems, bound_paths(BigCodeBenchJudging(library_paths=tuple(paths))))
    network = [entry.task_id for entry in report if entry.network]
    if network:
        log.warning(
            "%d BigCodeBench task(s) use the network, which the sandbox does not have (their tests may fail "
            "for that): %s",
            len(network),
            ", ".join(network[:20]) + (f" and {len(network) - 20} more" if len(network) > 20 else ""),
        )
    line = unrunnable_line(report)
    if line is None:
        return Runnable(problems, {})
    if not cfg.skip_unrunnable:
        raise DatasetError(f"{line} (install them, or set dataset.skip_unrunnable=true)")
    skipped = {entry.task_id: reason for entry in report if (reason := not_run_reason(entry)) is not None}
    log.warning("%s: they are not run (dataset.skip_unrunnable=true)", line)
    return Runnable([p for p in problems if p.task_id not in skipped], skipped)
