"""Expected outputs, computed by running each canonical solution, cached on disk.

For EvalPlus datasets the canonical solution runs on every base and plus input. For
``humaneval`` the original ``check`` function runs against the canonical solution with a
recorder in place of the candidate: the calls it makes become the task's inputs and the
canonical answers their expected values (so HumanEval/95's integer key ``5`` stays an
integer). Work runs in trusted worker processes, once per data file: the cache file is
keyed by the data file's hash, koderz's ground-truth version and the Python version.

Answers are cached compactly (see ``expected``): wire text for small ones, a digest for
big ones with their values in a per-task side file, and which answers are floats. An input whose reference answer
is longer than ``MAX_OUTPUT`` characters is dropped from the task (logged; MBPP+'s
``combinations_colors`` has one with a 1 GB answer), since no attempt could return it
through the sandbox's output cap.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import pickle
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from koderz.answers.checkenv import check_namespace
from koderz.answers.oracle import is_floats, normalize_expected
from koderz.answers.wire import MAX_OUTPUT, encode
from koderz.datasets.expected import Entry, compact

log = logging.getLogger(__name__)
GROUNDTRUTH_VERSION = 6


def cache_dir() -> Path:
    """Where koderz keeps caches: ``$KODERZ_CACHE_DIR`` or ``$XDG_CACHE_HOME/koderz``."""
    explicit = os.environ.get("KODERZ_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "koderz"


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


def _run_inputs(task: dict[str, Any]) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__reference__"}
    exec(compile(task["program"], task["task_id"], "exec"), namespace)
    function = namespace[task["entry_point"]]
    outputs = []
    started = time.process_time()
    for args in task["inputs"]:
        value = function(*copy.deepcopy(args))
        outputs.append(normalize_expected(task["family"], task["entry_point"], value))
    return {"inputs": None, "expected": outputs, "seconds": time.process_time() - started}


def _compact(task: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Store answers as wire text or digests; big values go to a side file, one pickle each."""
    side = task["side_dir"] / (task["task_id"].replace("/", "_") + ".pkl")
    entries: list[Entry] = []
    kept: list[int] = []
    floats: list[int] = []
    handle = None
    try:
        for index, value in enumerate(result["expected"]):
            text = encode(value)
            if len(text) > MAX_OUTPUT:
                continue
            if is_floats(value):
                floats.append(len(kept))
            kept.append(index)
            entry = compact(text)
            if not isinstance(entry, str):
                if handle is None:
                    side.parent.mkdir(parents=True, exist_ok=True)
                    handle = side.open("wb")
                entry = compact(text, handle.tell())
                pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
            entries.append(entry)
    finally:
        if handle is not None:
            handle.close()
    count = len(result["expected"])
    inputs = result["inputs"]
    return {
        "inputs": None if inputs is None else [inputs[i] for i in kept],
        "kept": None if len(kept) == count else kept,
        "expected": entries,
        "floats": floats,
        "side": str(side) if handle is not None else None,
        "seconds": result["seconds"],
    }


def _record_check(task: dict[str, Any]) -> dict[str, Any]:
    namespace = check_namespace()
    exec(compile(task["program"] + "\n" + task["tests"], task["task_id"], "exec"), namespace)
    function = namespace[task["entry_point"]]
    calls: list[Any] = []
    outputs: list[Any] = []
    depth = [0]

    def recorder(*args: Any) -> Any:
        if depth[0]:  # the canonical solution recursing through its own name
            return function(*args)
        calls.append(copy.deepcopy(args))
        depth[0] += 1
        try:
            result = function(*args)
        finally:
            depth[0] -= 1
        outputs.append(copy.deepcopy(result))
        return result

    namespace[task["entry_point"]] = recorder  # checks that call the entry point by name
    started = time.process_time()
    namespace["check"](recorder)
    return {"inputs": calls, "expected": outputs, "seconds": time.process_time() - started}


def _work(task: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    sys.setrecursionlimit(10_000)
    runner = _record_check if task["record_check"] else _run_inputs
    return task["task_id"], _compact(task, runner(task))


def compute(tasks: list[dict[str, Any]], workers: int | None = None) -> dict[str, dict[str, Any]]:
    """Run canonical solutions for ``tasks`` in worker processes (trusted code)."""
    workers = workers or os.cpu_count() or 1
    ordered = sorted(tasks, key=lambda t: -len(t["inputs"] or ()))  # big tasks first
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(_work, ordered, chunksize=1))


def load_or_compute(dataset: str, data: bytes, tasks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Expected outputs for ``tasks``, from the cache or computed and stored once."""
    key = f"{dataset}-{file_hash(data)}-v{GROUNDTRUTH_VERSION}-py{sys.version_info[0]}{sys.version_info[1]}"
    path = cache_dir() / "groundtruth" / (key + ".pkl")
    tasks = [dict(task, side_dir=path.with_suffix(".d")) for task in tasks]
    if path.exists():
        try:
            with path.open("rb") as handle:
                return pickle.load(handle)
        except (OSError, pickle.UnpicklingError, EOFError) as exc:
            log.warning("ignoring unreadable ground-truth cache %s: %s", path, exc)
    log.info("computing expected outputs for %s (%d tasks); cached in %s", dataset, len(tasks), path)
    started = time.perf_counter()
    result = compute(tasks)
    log.info("expected outputs for %s computed in %.1f s", dataset, time.perf_counter() - started)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".tmp{os.getpid()}")
    with partial.open("wb") as handle:
        pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(path)
    return result
