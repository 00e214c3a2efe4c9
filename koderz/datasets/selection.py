"""Which tasks a run covers: ``problems`` (explicit ids) or the ``[start, end)`` slice.

One rule for the command line (checked against :func:`files.task_ids` before anything
runs) and for the runner (against the loaded problems): an ``end`` past the dataset, a
``start`` at or past it, an unknown or a repeated task id is an error naming the value,
never a silent clamp or a task run twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from koderz.errors import ConfigError, DatasetError


def selected_ids(
    task_ids: Sequence[str], dataset: str, start: int, end: int | None, problems: Sequence[str] | None
) -> list[str]:
    """The ids to run, in the order they run; raises ``ConfigError``/``DatasetError``."""
    if problems:
        known = set(task_ids)
        seen: set[str] = set()
        for task in problems:
            if task not in known:
                raise DatasetError(f"problems: {task} is not a task of dataset {dataset}")
            if task in seen:
                raise ConfigError(f"problems: {task} is listed twice")
            seen.add(task)
        return list(problems)
    size = len(task_ids)
    if start >= size:
        raise ConfigError(f"start={start}: dataset {dataset} has only {size} tasks")
    if end is not None and end > size:
        raise ConfigError(f"end={end}: dataset {dataset} has only {size} tasks (leave end unset to run to the last)")
    return list(task_ids[start:end])
