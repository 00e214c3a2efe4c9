"""``dataset=livecodebench``: LiveCodeBench ``code_generation_lite`` problems from a file in
that format or from the hub (``livecodebench/code_generation_lite``), limited to a contest
date window (``dataset.date_from``/``date_to``, both included, as LiveCodeBench filters).

Public and private tests are kept in that order (LiveCodeBench judges them all); private
tests may be plain JSON or the published base64(zlib(pickle(json))) form. Each ``Problem``
carries its typed :class:`LiveCodeBenchTask` in ``extra["livecodebench"]``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import pickle
import zlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from koderz.datasets.bench_rows import read_rows, require
from koderz.datasets.problem import Problem
from koderz.errors import ConfigError, DatasetError

DATASET = "livecodebench"
HUB = "livecodebench/code_generation_lite"
FIELDS = (
    "question_title", "question_content", "platform", "question_id", "contest_id", "contest_date",
    "starter_code", "difficulty", "public_test_cases", "private_test_cases", "metadata",
)  # fmt: skip


class TestType(StrEnum):
    STDIN = "stdin"
    FUNCTIONAL = "functional"


@dataclass(frozen=True)
class TestCase:
    """One test as the dataset states it: text in, text out (functional: JSON lines of arguments)."""

    input: str
    output: str
    testtype: TestType


@dataclass(frozen=True)
class LiveCodeBenchTask:
    contest_date: dt.date
    starter_code: str
    func_name: str | None  # functional (LeetCode) problems: the method of ``Solution`` to call
    tests: tuple[TestCase, ...]  # public first, then private
    public_count: int

    @property
    def testtype(self) -> TestType:
        return TestType.FUNCTIONAL if self.func_name else TestType.STDIN


@dataclass(frozen=True)
class LiveCodeBenchSource:
    path: str | None = None  # local file/folder; None = the hub
    version: str = "test"  # the hub split
    date_from: str | None = None  # YYYY-MM-DD, included
    date_to: str | None = None


def parse_date(value: Any, what: str) -> dt.date | None:
    """LiveCodeBench's parse_date: the first 10 characters as YYYY-MM-DD."""
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.datetime.strptime(str(value)[:10], "%Y-%m-%d").date()
    except ValueError as exc:
        raise ConfigError(f"{what}={value}: not a date (YYYY-MM-DD)") from exc


def task_of(problem: Problem) -> LiveCodeBenchTask:
    task = problem.extra.get(DATASET)
    if not isinstance(task, LiveCodeBenchTask):
        raise DatasetError(f"{problem.task_id} is not a LiveCodeBench problem")
    return task


def _tests(value: str, where: str) -> list[TestCase]:
    try:
        raw = json.loads(value)
    except ValueError:
        try:
            raw = json.loads(pickle.loads(zlib.decompress(base64.b64decode(value.encode("utf-8")))))
        except Exception as exc:
            raise DatasetError(f"{where}: test cases are neither JSON nor the compressed form") from exc
    try:
        return [TestCase(str(t["input"]), str(t["output"]), TestType(t["testtype"])) for t in raw]
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: a test case lacks input/output/testtype ({exc})") from exc


def load(source: LiveCodeBenchSource) -> tuple[Problem, ...]:
    """The problems whose contest date is inside the window, in file order."""
    start = parse_date(source.date_from, "dataset.date_from")
    end = parse_date(source.date_to, "dataset.date_to")
    where = source.path or HUB
    rows = read_rows(where, source.version)
    require(rows, FIELDS, where)
    problems = []
    for row in rows:
        date = parse_date(row["contest_date"], f"{where}: {row['question_id']} contest_date")
        assert date is not None
        if (start and date < start) or (end and date > end):
            continue
        public = _tests(row["public_test_cases"], f"{where}: {row['question_id']}")
        private = _tests(row["private_test_cases"], f"{where}: {row['question_id']}")
        metadata = json.loads(row["metadata"] or "{}") if isinstance(row["metadata"], str) else dict(row["metadata"])
        task = LiveCodeBenchTask(
            contest_date=date,
            starter_code=row["starter_code"] or "",
            func_name=metadata.get("func_name"),
            tests=tuple(public + private),
            public_count=len(public),
        )
        problems.append(
            Problem(
                task_id=str(row["question_id"]),
                prompt=row["question_content"],
                entry_point=task.func_name or "",
                canonical_solution="",  # LiveCodeBench publishes no solutions
                tests=row["public_test_cases"],
                dataset=DATASET,
                extra={DATASET: task},
            )
        )
    if not problems:
        raise DatasetError(f"dataset.path={where}: no problem inside the date window {start} .. {end}")
    return tuple(problems)
