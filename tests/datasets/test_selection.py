"""One selection rule (``koderz.datasets.selection``) for the command line and the runner."""

from __future__ import annotations

import pytest

from koderz.datasets.files import task_ids
from koderz.datasets.loaders import load_dataset
from koderz.datasets.problem import Problem
from koderz.datasets.selection import selected_ids
from koderz.errors import ConfigError, DatasetError
from koderz.runner import select_problems
from tests.conftest import plan

IDS = [f"T/{i}" for i in range(5)]


@pytest.mark.parametrize(
    ("start", "end", "expected"), [(0, None, IDS), (1, 3, IDS[1:3]), (3, 5, IDS[3:]), (4, None, IDS[4:])]
)
def test_a_slice_inside_the_dataset(start: int, end: int | None, expected: list[str]) -> None:
    assert selected_ids(IDS, "toy", start, end, None) == expected


@pytest.mark.parametrize(
    ("start", "end", "problems", "error", "message"),
    [
        (0, 6, None, ConfigError, "end=6: dataset toy has only 5 tasks"),
        (5, None, None, ConfigError, "start=5: dataset toy has only 5 tasks"),
        (0, None, ["T/1", "T/1"], ConfigError, "problems: T/1 is listed twice"),
        (0, None, ["T/9"], DatasetError, "problems: T/9 is not a task of dataset toy"),
    ],
)
def test_past_the_end_repeated_or_unknown_is_an_error(start, end, problems, error, message) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(")):
        selected_ids(IDS, "toy", start, end, problems)


def test_explicit_problems_keep_their_order() -> None:
    assert selected_ids(IDS, "toy", 0, None, ["T/3", "T/0"]) == ["T/3", "T/0"]


def test_the_runner_selects_with_the_same_rule() -> None:
    problems = tuple(
        Problem(task_id=t, prompt="", entry_point="f", canonical_solution="", tests="", dataset="toy") for t in IDS
    )
    toy = plan("start=1", "end=3")
    toy.config.dataset.name = "toy"
    assert [p.task_id for p in select_problems(problems, toy)] == IDS[1:3]
    toy.config.end = 9
    with pytest.raises(ConfigError, match="end=9: dataset toy has only 5 tasks"):
        select_problems(problems, toy)


@pytest.mark.parametrize("name", ["humaneval", "humaneval_plus", "humaneval_plus_mini", "mbpp_plus"])
def test_the_cheap_task_ids_are_the_loaded_datasets_ids(name: str) -> None:
    assert task_ids(name) == tuple(p.task_id for p in load_dataset(name))


def test_an_unknown_dataset_names_the_choices() -> None:
    with pytest.raises(DatasetError, match="dataset=nope: unknown dataset \\(choose from humaneval, "):
        task_ids("nope")
