"""Export in each benchmark's samples format, read back by the benchmark's own readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from koderz.export.bench_samples import Sample, bigcodebench_lines, livecodebench_lines
from tests.support.bench_files import bcb_samples, lcb_samples


def test_bigcodebench_samples_round_trip_through_its_loader(tmp_path: Path):
    samples = [Sample(s.task_id, s.solution) for s in bcb_samples()]
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(line + "\n" for line in bigcodebench_lines(samples)), encoding="utf-8")
    data = pytest.importorskip("bigcodebench.data", exc_type=ImportError)
    read = list(data.load_solutions(str(path)))
    assert [(r["task_id"], r["solution"]) for r in read] == [(s.task_id, s.program) for s in samples]


def test_livecodebench_code_lists_keep_problem_and_program_order(tmp_path: Path):
    samples = [Sample(s.task_id, s.solution) for s in lcb_samples()]
    path = tmp_path / "generations.jsonl"
    path.write_text("".join(line + "\n" for line in livecodebench_lines(samples)), encoding="utf-8")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["question_id"] for r in rows] == list(dict.fromkeys(s.task_id for s in samples))
    assert [c for r in rows for c in r["code_list"]] == [s.program for s in samples]
