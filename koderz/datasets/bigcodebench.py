"""``dataset=bigcodebench``: BigCodeBench tasks (full or ``hard``; ``complete`` or ``instruct``
prompts) from a file in its published format or from the hub (``bigcode/bigcodebench[-hard]``,
split = the release version, as bigcodebench 0.2.5 reads it).

Each ``Problem`` carries its typed :class:`BigCodeBenchTask` in ``extra["bigcodebench"]``.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from koderz.datasets.bench_rows import read_rows, require
from koderz.datasets.problem import Problem
from koderz.errors import DatasetError

DATASET = "bigcodebench"
HUB = "bigcode/bigcodebench"
DEFAULT_VERSION = "v0.1.4"  # bigcodebench 0.2.5's BIGCODEBENCH_VERSION
FIELDS = ("task_id", "complete_prompt", "instruct_prompt", "canonical_solution", "code_prompt", "test", "entry_point")


class Subset(StrEnum):
    FULL = "full"
    HARD = "hard"


class Split(StrEnum):
    """Which prompt the model sees."""

    COMPLETE = "complete"
    INSTRUCT = "instruct"


@dataclass(frozen=True)
class BigCodeBenchTask:
    """What judging and the prompts need beyond ``Problem``: the test suite, the prompts, the libraries."""

    complete_prompt: str
    instruct_prompt: str
    test: str
    libs: tuple[str, ...]
    release: str  # the release version (a hub split name, or the file's own name)
    subset: Subset
    split: Split


@dataclass(frozen=True)
class BigCodeBenchSource:
    """Where the tasks come from (``dataset.*`` keys)."""

    path: str | None = None  # local file/folder; None = the hub
    subset: Subset = Subset.FULL
    split: Split = Split.COMPLETE
    version: str = DEFAULT_VERSION

    def location(self) -> str:
        return self.path or (HUB if self.subset is Subset.FULL else f"{HUB}-{self.subset}")


def parse_libs(value: Any) -> tuple[str, ...]:
    """The ``libs`` field: the dataset stores it as the text of a Python list."""
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    try:
        parsed = ast.literal_eval(value or "[]")
    except (ValueError, SyntaxError) as exc:
        raise DatasetError(f"dataset=bigcodebench: libs {value!r} is not a list") from exc
    return tuple(str(v) for v in parsed)


def reference_program(problem: Problem) -> str:
    """The canonical solution as bigcodebench runs it: ``complete_prompt + "\\n" + canonical_solution``."""
    return task_of(problem).complete_prompt + "\n" + problem.canonical_solution


def task_of(problem: Problem) -> BigCodeBenchTask:
    task = problem.extra.get(DATASET)
    if not isinstance(task, BigCodeBenchTask):
        raise DatasetError(f"{problem.task_id} is not a BigCodeBench task")
    return task


def load(source: BigCodeBenchSource) -> tuple[Problem, ...]:
    """The tasks in file order."""
    where = source.location()
    rows = read_rows(where, source.version)
    require(rows, FIELDS, where)
    if not rows:
        raise DatasetError(f"dataset.path={where}: no tasks")
    release = source.version if source.path is None else _file_release(rows)
    problems = []
    for row in rows:
        task = BigCodeBenchTask(
            complete_prompt=row["complete_prompt"],
            instruct_prompt=row["instruct_prompt"],
            test=row["test"],
            libs=parse_libs(row.get("libs")),
            release=release,
            subset=source.subset,
            split=source.split,
        )
        prompt = task.complete_prompt if source.split is Split.COMPLETE else task.instruct_prompt
        problems.append(
            Problem(
                task_id=row["task_id"],
                prompt=prompt,
                entry_point=row["entry_point"],
                canonical_solution=row["canonical_solution"],
                tests=row["test"],
                dataset=DATASET,
                extra={DATASET: task},
            )
        )
    return tuple(problems)


def _file_release(rows: list[dict[str, Any]]) -> str:
    """A local file's release: the hash of its tasks (the file may not name its version)."""
    digest = hashlib.sha256()
    for row in rows:
        for name in FIELDS:
            digest.update(str(row[name]).encode("utf-8", "surrogatepass") + b"\0")
    return "sha256:" + digest.hexdigest()[:16]
