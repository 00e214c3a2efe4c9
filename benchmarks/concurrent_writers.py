"""Concurrent writers: several processes writing koderz's local SQLite stores at the same moment.

    python benchmarks/concurrent_writers.py [--writers 4 8] [--runs 2] [--records 200]

For each writer count W, W fresh processes wait on one barrier and then all write to
the same file at once, through koderz's own code:

- ``mlflow``: ``log_run_folder`` of a real run folder, ``--runs`` times each, into one
  MLflow SQLite store (``sqlite:///.../mlflow.db``): on a fresh file (every writer also
  creates the schema), on a fresh file with the schema created under a file lock (the
  change proposed for ``koderz/tracking``), and on an already migrated file;
- ``result_cache``: ``ResultCache`` on one fresh ``results.sqlite`` — ``--records``
  distinct keys per writer plus 20 keys every writer stores (the run's first problem
  result, under each key);
- ``cortex``: koderz's embedded Cortex (``cortex=persistent``) on one fresh ``cortex.db``,
  ``--records`` memories per writer.

Then it counts what is in each store: every record present exactly once, and every
error a writer saw (``database is locked`` and others). Prints a table and writes
``benchmarks/results/concurrent_writers.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import PYTHON, ROOT, machine, product_state, write_json

RESULTS = ROOT / "benchmarks" / "results" / "concurrent_writers.json"
SHARED_KEYS = 20


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200] if text else ''}"


# ------------------------------------------------------------------- writers (one process each)


def migrate_under_lock(uri: str) -> None:
    """The proposed fix: one process at a time creates/migrates the schema (flock on <db>.lock)."""
    import mlflow

    db = Path(uri.removeprefix("sqlite:///"))
    with db.with_name(db.name + ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        mlflow.MlflowClient(uri).search_experiments(max_results=1)


class _Warnings(logging.Handler):
    """Collects the warnings koderz logs (``log_run_folder`` reports a failure as one, never raises)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage().splitlines()[0][:200])


def mlflow_writer(index: int, barrier: Any, uri: str, folder: str, runs: int, lock: bool) -> dict[str, Any]:
    from koderz.config import TrackingConfig
    from koderz.tracking.logger import log_run_folder

    tracking = TrackingConfig(
        enabled=True, uri=uri, experiment="concurrent", artifact_location=str(Path(folder).parent / "art")
    )
    warnings = _Warnings()
    logging.getLogger("koderz").addHandler(warnings)
    barrier.wait()
    start, errors, done = time.perf_counter(), [], []
    if lock:
        migrate_under_lock(uri)
    for number in range(runs):
        warnings.lines.clear()
        run_id = log_run_folder(Path(folder), tracking, tags={"writer": f"{index}/{number}"})
        if run_id is None:
            errors.append("; ".join(warnings.lines) or "not logged")
        else:
            done.append(run_id)
    return {"seconds": time.perf_counter() - start, "errors": errors, "written": len(done)}


def cache_writer(index: int, barrier: Any, path: str, records: int, folder: str) -> dict[str, Any]:
    from koderz.records import ProblemResult, RunFolder
    from koderz.result_cache import ResultCache
    from koderz.vocab import Mode

    record = RunFolder.existing(Path(folder)).records()[0]
    barrier.wait()
    start, errors, written = time.perf_counter(), [], 0

    async def work() -> None:
        nonlocal written
        cache = ResultCache(Path(path), {"benchmark": "concurrent_writers"})
        keys = [f"w{index}/t{j}" for j in range(records)] + [f"shared/t{j}" for j in range(SHARED_KEYS)]
        for key in keys:
            try:
                await cache.put(Mode.ZERO_SHOT, key, ProblemResult(record=record.model_copy(update={"task_id": key})))
                if (await cache.get(Mode.ZERO_SHOT, key)) is None:
                    errors.append(f"{key}: not found right after put")
                written += 1
            except Exception as err:
                errors.append(_one_line(err))

    try:
        asyncio.run(work())
    except Exception as err:  # the constructor (schema, WAL switch) failed
        errors.append(_one_line(err))
    return {"seconds": time.perf_counter() - start, "errors": errors, "written": written}


def cortex_writer(index: int, barrier: Any, db: str, records: int) -> dict[str, Any]:
    from koderz.cortex.config import CortexConfig
    from koderz.cortex.factory import open_memory_store
    from koderz.cortex.store import MemoryRecord

    cfg = CortexConfig(mode="embedded", persistent=True, db=db, write_buffer=64)
    barrier.wait()
    start, errors, lost = time.perf_counter(), [], 0

    async def work() -> None:
        nonlocal lost
        async with open_memory_store(cfg, f"writer-{index}") as store:
            for j in range(records):
                await store.remember(MemoryRecord(title=f"w{index}/m{j}", content="x", tags=(f"writer-{index}",)))
        lost = store.lost_writes

    try:
        asyncio.run(work())
    except Exception as err:
        errors.append(_one_line(err))
    return {"seconds": time.perf_counter() - start, "errors": errors, "lost_writes": lost}


def _writer_process(target: Any, index: int, barrier: Any, results: Any, args: tuple[Any, ...]) -> None:
    try:
        outcome = target(index, barrier, *args)
    except Exception as err:
        barrier.abort()
        outcome = {"seconds": 0.0, "errors": [_one_line(err)], "written": 0}
    results.put((index, outcome))


def _run_writers(target: Any, writers: int, *args: Any) -> tuple[float, list[dict[str, Any]]]:
    """Start ``writers`` fresh processes, release them together, wait for all (deadline 600 s)."""
    context = multiprocessing.get_context("spawn")  # no inherited MLflow/SQLite state
    barrier, results = context.Barrier(writers + 1), context.Queue()
    procs = [context.Process(target=_writer_process, args=(target, i, barrier, results, args)) for i in range(writers)]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=300)  # every writer has imported its modules
    start = time.perf_counter()
    outcomes = dict(results.get(timeout=600) for _ in procs)
    wall = time.perf_counter() - start
    for proc in procs:
        proc.join(timeout=60)
    return wall, [outcomes[i] for i in range(writers)]


# ------------------------------------------------------------------------------- the counts


def count_mlflow(uri: str) -> Counter[str] | str:
    """The ``writer`` tag of every run in the store, or why the store cannot be read."""
    import mlflow

    try:
        client = mlflow.MlflowClient(uri)
        experiment = client.get_experiment_by_name("concurrent")
    except Exception as err:
        return f"store unreadable: {_one_line(err)}"
    if experiment is None:
        return Counter()
    runs = client.search_runs([experiment.experiment_id], max_results=10_000)
    return Counter(r.data.tags.get("writer", "?") for r in runs)


def count_rows(path: Path, sql: str) -> Counter[str]:
    with closing(sqlite3.connect(path)) as db:
        return Counter(row[0] for row in db.execute(sql))


def summarize(
    name: str,
    writers: int,
    wall: float,
    outcomes: list[dict[str, Any]],
    present: Counter[str] | str,
    expected: set[str],
) -> dict[str, Any]:
    errors = [e for o in outcomes for e in o["errors"]]
    if isinstance(present, str):  # the store itself is broken
        errors.append(present)
        present = Counter()
    return {
        "store": name,
        "writers": writers,
        "wall_s": wall,
        "expected_records": len(expected),
        "present_records": len(set(present) & expected),
        "missing": len(expected - set(present)),
        "duplicated": sum(1 for k, n in present.items() if n > 1),
        "unexpected": len(set(present) - expected),
        "errors": len(errors),
        "locked_errors": sum("locked" in e for e in errors),
        "lost_writes": sum(o.get("lost_writes", 0) for o in outcomes),
        "error_examples": sorted(set(errors))[:5],
    }


def measure(writers: int, runs: int, records: int, folder: Path, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    migrated = tmp / "migrated.db"
    if not migrated.exists():
        import mlflow

        mlflow.MlflowClient(f"sqlite:///{migrated}").search_experiments()
    for variant in ("fresh file", "fresh file, schema lock", "migrated file"):
        db = tmp / f"mlflow-{writers}-{variant.replace(' ', '_').replace(',', '')}.db"
        if variant == "migrated file":
            shutil.copyfile(migrated, db)
        uri = f"sqlite:///{db}"
        wall, outcomes = _run_writers(mlflow_writer, writers, uri, str(folder), runs, "lock" in variant)
        expected = {f"{i}/{n}" for i in range(writers) for n in range(runs)}
        rows.append(summarize(f"mlflow ({variant})", writers, wall, outcomes, count_mlflow(uri), expected))

    cache = tmp / f"cache-{writers}.sqlite"
    wall, outcomes = _run_writers(cache_writer, writers, str(cache), records, str(folder))
    expected = {f"w{i}/t{j}" for i in range(writers) for j in range(records)} | {
        f"shared/t{j}" for j in range(SHARED_KEYS)
    }
    present = count_rows(cache, "SELECT task_id FROM results") if cache.exists() else Counter()
    rows.append(summarize("result cache", writers, wall, outcomes, present, expected))

    cortex = tmp / f"cortex-{writers}.db"
    wall, outcomes = _run_writers(cortex_writer, writers, str(cortex), records)
    expected = {f"w{i}/m{j}" for i in range(writers) for j in range(records)}
    present = count_rows(cortex, "SELECT title FROM memories") if cortex.exists() else Counter()
    rows.append(summarize("cortex (embedded)", writers, wall, outcomes, present, expected))
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    head = f"{'store':<36} {'writers':>7} {'wall s':>7} {'records':>8} {'missing':>7} {'dup':>4} {'errors':>6} {'locked':>6} {'lost':>5}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['store']:<36} {r['writers']:>7} {r['wall_s']:>7.1f} {r['present_records']:>4}/{r['expected_records']:<4}"
            f"{r['missing']:>6} {r['duplicated']:>4} {r['errors']:>6} {r['locked_errors']:>6} {r['lost_writes']:>5}"
        )
        for example in r["error_examples"]:
            print(f"    {example}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--runs", type=int, default=2, help="MLflow runs each writer logs")
    parser.add_argument("--records", type=int, default=200, help="cache entries / memories per writer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="koderz-writers-") as name:
        tmp = Path(name)
        folder = tmp / "run"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        source = [PYTHON, "-m", "koderz", "tracking=off", "cortex=off", "end=3", f"hydra.run.dir={folder}"]
        subprocess.run(source, cwd=tmp, env=env, check=True, capture_output=True, timeout=600)
        rows = [row for writers in args.writers for row in measure(writers, args.runs, args.records, folder, tmp)]
    print_table(rows)
    write_json(RESULTS, {"machine": machine(), "product": product_state(), "args": vars(args), "rows": rows})
    print(f"\nwritten {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
