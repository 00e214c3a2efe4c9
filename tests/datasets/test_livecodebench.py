"""dataset=livecodebench: code_generation_lite rows (stdin and functional tests, compressed
private tests), the contest date window, one-line errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from koderz.datasets import livecodebench
from koderz.errors import ConfigError, DatasetError
from koderz.problems import load_benchmark
from tests.support.bench_files import LCB_FILE, lcb_config


def test_every_problem_loads_with_public_then_private_tests():
    problems = load_benchmark(lcb_config())
    rows = [json.loads(line) for line in LCB_FILE.read_text().splitlines()]
    assert len(problems) == len(rows) >= 30
    kinds = {livecodebench.task_of(p).testtype for p in problems}
    assert kinds == {livecodebench.TestType.STDIN, livecodebench.TestType.FUNCTIONAL}
    for problem, row in zip(problems, rows, strict=True):
        task = livecodebench.task_of(problem)
        public = json.loads(row["public_test_cases"])
        assert [t.input for t in task.tests[: task.public_count]] == [t["input"] for t in public]
        assert len(task.tests) > task.public_count  # private tests decoded (plain or compressed)


def test_functional_problems_name_their_method():
    functional = [p for p in load_benchmark(lcb_config()) if livecodebench.task_of(p).func_name]
    assert functional and all(p.entry_point == livecodebench.task_of(p).func_name for p in functional)
    assert all(livecodebench.task_of(p).starter_code.startswith("class Solution") for p in functional)


def test_the_date_window_keeps_both_ends():
    everything = load_benchmark(lcb_config())
    dates = sorted({livecodebench.task_of(p).contest_date for p in everything})
    low, high = dates[1], dates[-2]
    kept = load_benchmark(lcb_config(date_from=low.isoformat(), date_to=high.isoformat()))
    kept_dates = {livecodebench.task_of(p).contest_date for p in kept}
    assert min(kept_dates) == low and max(kept_dates) == high
    assert len(kept) == sum(1 for p in everything if low <= livecodebench.task_of(p).contest_date <= high)


def test_bad_dates_and_empty_windows_are_one_line_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"^dataset.date_from=May 2024: not a date"):
        load_benchmark(lcb_config(date_from="May 2024"))
    with pytest.raises(DatasetError, match="no problem inside the date window"):
        load_benchmark(lcb_config(date_from=(dt.date.today() + dt.timedelta(days=3650)).isoformat()))
    with pytest.raises(DatasetError, match="no such file"):
        load_benchmark(lcb_config(path=str(tmp_path / "missing.parquet")))


def test_a_saved_datasets_folder_reads_like_the_file(tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    rows = [json.loads(line) for line in LCB_FILE.read_text().splitlines()]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    from_folder = load_benchmark(lcb_config(path=str(tmp_path / "saved")))
    from_file = load_benchmark(lcb_config())
    assert [livecodebench.task_of(p) for p in from_folder] == [livecodebench.task_of(p) for p in from_file]
