"""The datasets read from a benchmark's own files or the hub, and their keys' values checked before
anything is read (light: the command line checks them before any heavy import)."""

from __future__ import annotations

from enum import StrEnum

from koderz.datasets import bigcodebench, livecodebench
from koderz.errors import ConfigError

BENCHMARKS = (bigcodebench.DATASET, livecodebench.DATASET)


def check_values(name: str, *, subset: str, split: str, date_from: str | None, date_to: str | None) -> None:
    """``ConfigError`` naming the first bad value of a benchmark's keys (subset, split, dates)."""
    if name == bigcodebench.DATASET:
        _choice(bigcodebench.Subset, "dataset.subset", subset)
        _choice(bigcodebench.Split, "dataset.split", split)
    elif name == livecodebench.DATASET:
        start = livecodebench.parse_date(date_from, "dataset.date_from")
        end = livecodebench.parse_date(date_to, "dataset.date_to")
        if start and end and end < start:
            raise ConfigError(f"dataset.date_to={date_to}: before dataset.date_from={date_from}")


def _choice(kind: type[StrEnum], key: str, value: str) -> None:
    if value not in {member.value for member in kind}:
        raise ConfigError(f"{key}={value}: choose one of {', '.join(member.value for member in kind)}")
