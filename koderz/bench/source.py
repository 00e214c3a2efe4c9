"""From ``dataset.*`` config keys to the BigCodeBench / LiveCodeBench loaders."""

from __future__ import annotations

from koderz.config import DatasetConfig
from koderz.datasets import bigcodebench, livecodebench
from koderz.datasets.problem import Problem
from koderz.errors import ConfigError

BENCHMARKS = (bigcodebench.DATASET, livecodebench.DATASET)


def load_benchmark(cfg: DatasetConfig) -> tuple[Problem, ...]:
    """The tasks ``cfg`` names; ``ConfigError``/``DatasetError`` (one line) for a bad value or file."""
    if cfg.name == bigcodebench.DATASET:
        try:
            subset, split = bigcodebench.Subset(cfg.subset), bigcodebench.Split(cfg.split)
        except ValueError as exc:
            raise ConfigError(f"dataset.subset={cfg.subset} / dataset.split={cfg.split}: {exc}") from exc
        source = bigcodebench.BigCodeBenchSource(
            path=cfg.path, subset=subset, split=split, version=cfg.version or bigcodebench.DEFAULT_VERSION
        )
        return bigcodebench.load(source)
    if cfg.name == livecodebench.DATASET:
        return livecodebench.load(
            livecodebench.LiveCodeBenchSource(
                path=cfg.path, version=cfg.version or "test", date_from=cfg.date_from, date_to=cfg.date_to
            )
        )
    raise ConfigError(f"dataset={cfg.name}: not one of {', '.join(BENCHMARKS)}")
