"""Expected outputs, computed by running each canonical solution, cached on disk as JSON.

For EvalPlus datasets the canonical solution runs on every base and plus input. For
``humaneval`` the original ``check`` function runs against the canonical solution with a
recorder in place of the candidate: the calls it makes become the task's inputs and the
canonical answers their expected values (so HumanEval/95's integer key ``5`` stays an
integer). Work runs in trusted worker processes, once per data file.

The cache holds data only, never code: one JSON file per data file, its answers in the
sandbox's wire encoding (``expected``: wire text for small ones, a digest for big ones with
their wire text in a per-task side file), which answers are floats, the inputs ``check``
called with, and the canonical solution's CPU time on each input (with the machine's
``calibration`` figure in the header: the sandbox's per-input budgets scale by it). Its name
and first line carry ``truth_key`` (a digest of the data file, of the source of the code that
computes and encodes the answers, and of the Python version) and a SHA-256 of the rest; a file whose key or digest does not match is recomputed and replaced.
It lives in a folder only the user can change (``koderz.safefiles``: an unsafe cache folder is
refused with one line). An input whose reference answer is longer than ``MAX_OUTPUT``
characters is dropped from the task (logged; MBPP+'s ``combinations_colors`` has one with a
1 GB answer), since no attempt could return it through the sandbox's output cap.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from koderz import provenance
from koderz.answers import checkenv, oracle, wire
from koderz.answers.checkenv import check_namespace
from koderz.answers.oracle import is_floats, normalize_expected
from koderz.answers.wire import MAX_OUTPUT, decode, encode
from koderz.datasets import calibration as calibration_module
from koderz.datasets import expected as expected_module
from koderz.datasets.calibration import workload_seconds
from koderz.datasets.expected import Entry, Expected, compact
from koderz.safefiles import TrustedDir, UnsafeFile, cache_dir, open_cache

__all__ = ["GroundTruth", "TaskTruth", "cache_dir", "file_hash", "load_or_compute", "truth_key"]

log = logging.getLogger(__name__)
FORMAT = "koderz ground truth"
# the code whose output the cache holds: a change to any of these files is a new key
CODE_DIGEST = provenance.source_digest(
    [Path(__file__).resolve(), *provenance.module_files([expected_module, calibration_module, oracle, wire, checkenv])]
)


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


def truth_key(dataset: str, data: bytes) -> str:
    """What the ground truth of ``data`` depends on: the data, the computing code, the Python version."""
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return hashlib.sha256(f"{dataset}\0{file_hash(data)}\0{CODE_DIGEST}\0{python}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class TaskTruth:
    """One task's stored ground truth (plain data: nothing in it can run)."""

    inputs: str | None  # wire text of the calls ``check`` made (humaneval); None: the data file has them
    kept: list[int] | None  # the inputs kept (None: all), when some answers exceed the output cap
    expected: list[Entry]
    floats: list[int]
    side: bool  # big answers' wire text is in the task's side file
    seconds: float  # the canonical solution's CPU time on all inputs
    input_seconds: list[float]  # its CPU time on each input (each call ``check`` made)

    @classmethod
    def parse(cls, raw: Any) -> TaskTruth:
        """From its JSON form; ValueError when it is not one (no pydantic: the sandbox's venv lacks it)."""
        if type(raw) is not dict or raw.keys() != {f.name for f in fields(cls)} or type(raw["expected"]) is not list:
            raise ValueError("not a task's ground truth")
        expected = [e if type(e) is str else _digest_entry(e) for e in raw["expected"]]
        truth = cls(
            raw["inputs"], raw["kept"], expected, raw["floats"], raw["side"], raw["seconds"], raw["input_seconds"]
        )
        if not (
            type(truth.inputs) in (str, type(None))
            and (truth.kept is None or _ints(truth.kept))
            and _ints(truth.floats)
            and type(truth.side) is bool
            and type(truth.seconds) in (int, float)
            and type(truth.input_seconds) is list
            and len(truth.input_seconds) == len(truth.expected)
            and all(type(t) in (int, float) and t >= 0 for t in truth.input_seconds)
        ):
            raise ValueError("a task's ground truth has a field of the wrong type")
        return truth


def _ints(items: Any) -> bool:
    return type(items) is list and all(type(i) is int for i in items)


def _digest_entry(raw: Any) -> Entry:
    if type(raw) is not list or [type(x) for x in raw] != [str, int, str, int]:
        raise ValueError("not an expected output's entry")
    return (raw[0], raw[1], raw[2], raw[3])


@dataclass(frozen=True)
class GroundTruth:
    """The ground truth of one data file, and the folder of its side files."""

    tasks: dict[str, TaskTruth]
    side_dir: Path
    calibration: float  # ``calibration.workload_seconds()`` where the canonical solutions were timed

    def inputs(self, task_id: str) -> list[Any]:
        text = self.tasks[task_id].inputs
        return [] if text is None else list(decode(text))  # type: ignore[call-overload]

    def expected(self, task_id: str) -> Expected:
        truth = self.tasks[task_id]
        side = self.side_dir / _side_name(task_id) if truth.side else None
        return Expected(truth.expected, side, frozenset(truth.floats))


def _side_name(task_id: str) -> str:
    return task_id.replace("/", "_") + ".wire"


def _run_inputs(task: dict[str, Any]) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__reference__"}
    exec(compile(task["program"], task["task_id"], "exec"), namespace)
    function = namespace[task["entry_point"]]
    outputs = []
    times = []
    for args in task["inputs"]:
        args = copy.deepcopy(args)
        started = time.process_time()
        value = function(*args)
        times.append(time.process_time() - started)
        outputs.append(normalize_expected(task["family"], task["entry_point"], value))
    return {"inputs": None, "expected": outputs, "seconds": sum(times), "input_seconds": times}


def _compact(task: dict[str, Any], result: dict[str, Any]) -> TaskTruth:
    """Answers as wire text or digests; big answers' wire text goes to the task's side file."""
    entries: list[Entry] = []
    kept: list[int] = []
    floats: list[int] = []
    big: list[bytes] = []
    offset = 0
    for index, value in enumerate(result["expected"]):
        text = encode(value)
        if len(text) > MAX_OUTPUT:
            continue
        if is_floats(value):
            floats.append(len(kept))
        kept.append(index)
        entry = compact(text)
        if not isinstance(entry, str):
            entry = compact(text, offset)
            big.append(text.encode("ascii"))
            offset += len(big[-1])
        entries.append(entry)
    if big:
        with TrustedDir.open(task["side_dir"]) as side:
            side.write_bytes(_side_name(task["task_id"]), b"".join(big))
    count = len(result["expected"])
    inputs = result["inputs"]
    return TaskTruth(
        inputs=None if inputs is None else encode([inputs[i] for i in kept]),
        kept=None if len(kept) == count else kept,
        expected=entries,
        floats=floats,
        side=bool(big),
        seconds=result["seconds"],
        input_seconds=[result["input_seconds"][i] for i in kept],
    )


def _record_check(task: dict[str, Any]) -> dict[str, Any]:
    namespace = check_namespace()
    exec(compile(task["program"] + "\n" + task["tests"], task["task_id"], "exec"), namespace)
    function = namespace[task["entry_point"]]
    calls: list[Any] = []
    outputs: list[Any] = []
    times: list[float] = []
    depth = [0]

    def recorder(*args: Any) -> Any:
        if depth[0]:  # the canonical solution recursing through its own name
            return function(*args)
        calls.append(copy.deepcopy(args))
        depth[0] += 1
        started = time.process_time()
        try:
            result = function(*args)
        finally:
            depth[0] -= 1
        times.append(time.process_time() - started)
        outputs.append(copy.deepcopy(result))
        return result

    namespace[task["entry_point"]] = recorder  # checks that call the entry point by name
    started = time.process_time()
    namespace["check"](recorder)
    return {"inputs": calls, "expected": outputs, "seconds": time.process_time() - started, "input_seconds": times}


def _work(task: dict[str, Any]) -> tuple[str, TaskTruth]:
    sys.setrecursionlimit(10_000)
    runner = _record_check if task["record_check"] else _run_inputs
    return task["task_id"], _compact(task, runner(task))


def compute(tasks: list[dict[str, Any]], workers: int | None = None) -> dict[str, TaskTruth]:
    """Run canonical solutions for ``tasks`` in worker processes (trusted code)."""
    workers = workers or os.cpu_count() or 1
    ordered = sorted(tasks, key=lambda t: -len(t["inputs"] or ()))  # big tasks first
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(_work, ordered, chunksize=1))


def _dump(key: str, tasks: dict[str, TaskTruth], calibration: float) -> bytes:
    body = json.dumps({task_id: asdict(truth) for task_id, truth in tasks.items()}, separators=(",", ":")).encode()
    header = {"format": FORMAT, "key": key, "sha256": hashlib.sha256(body).hexdigest(), "calibration": calibration}
    return json.dumps(header).encode() + b"\n" + body


def _load(store: TrustedDir, name: str, key: str) -> tuple[dict[str, TaskTruth], float] | None:
    """The stored ground truth, or None (with a warning) when it is absent, unsafe or not this key's."""
    try:
        data = store.read_bytes(name)
    except UnsafeFile as exc:
        log.warning("ignoring the ground-truth cache file (recomputed): %s", exc)
        return None
    if data is None:
        return None
    head, _, body = data.partition(b"\n")
    try:
        header = json.loads(head)
        calibration = header.pop("calibration", None) if type(header) is dict else None
        if header != {"format": FORMAT, "key": key, "sha256": hashlib.sha256(body).hexdigest()}:
            raise ValueError("its key or content digest does not match")
        if type(calibration) is not float or not calibration > 0:
            raise ValueError("its calibration is not a positive number")
        tasks = json.loads(body)
        if type(tasks) is not dict:
            raise ValueError("not a mapping of tasks")
        return {str(task_id): TaskTruth.parse(raw) for task_id, raw in tasks.items()}, calibration
    except ValueError as exc:
        log.warning("ignoring the ground-truth cache file %s (recomputed): %s", store.path / name, str(exc)[:200])
        return None


def load_or_compute(dataset: str, data: bytes, tasks: list[dict[str, Any]]) -> GroundTruth:
    """Expected outputs for ``tasks``, from the cache or computed and stored once."""
    key = truth_key(dataset, data)
    name = f"{dataset}-{key}"
    with open_cache() as root, root.subdir("groundtruth") as store:
        side_dir = store.path / f"{name}.d"
        stored = _load(store, f"{name}.json", key)
        if stored is not None:
            return GroundTruth(stored[0], side_dir, stored[1])
        log.info("computing expected outputs for %s (%d tasks); cached in %s", dataset, len(tasks), store.path)
        started = time.perf_counter()
        calibration = workload_seconds()
        computed = compute([dict(task, side_dir=side_dir) for task in tasks])
        log.info("expected outputs for %s computed in %.1f s", dataset, time.perf_counter() - started)
        store.write_bytes(f"{name}.json", _dump(key, computed, calibration))
    return GroundTruth(computed, side_dir, calibration)
