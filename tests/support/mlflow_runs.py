"""Helpers for the tracking tests: a migrated MLflow store, and a run folder made by a real run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from koderz.datasets.loaders import load_dataset
from tests.conftest import run_job

TASKS = ("HumanEval/0", "HumanEval/1", "HumanEval/2", "HumanEval/3")


@contextmanager
def global_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's process-wide tracking URI set to ``uri`` (``search_traces`` and ``load_table`` read it),
    unset after so the next test's ``MLFLOW_TRACKING_URI`` counts again."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None unsets it (typed as str | Path)


def fresh_store(tmp_path_factory: pytest.TempPathFactory, dest: Path) -> str:
    """Copy an empty, migrated MLflow SQLite store to ``dest``; return its URI.

    Creating the tables takes MLflow several seconds, so it happens once per session.
    """
    template = tmp_path_factory.getbasetemp() / "mlflow-template.db"
    if not template.exists():
        import mlflow

        building = template.with_suffix(".building")
        mlflow.MlflowClient(f"sqlite:///{building}").search_experiments()
        # koderz's engine hook may have put the store in WAL mode, with the last migrations still
        # in its -wal file: SQLite's backup copies what a reader sees (a rename or a file copy would not)
        with contextlib.closing(sqlite3.connect(building)) as src, contextlib.closing(sqlite3.connect(template)) as dst:
            src.backup(dst)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, dest)
    return f"sqlite:///{dest}"


def mixed_samples(path: Path) -> Path:
    """Replay answers for an iterative run over ``TASKS``: solved at 1, at 2, never, at 2."""
    problems = {p.task_id: p for p in load_dataset("humaneval")}
    right = {t: problems[t].reference_program for t in TASKS}
    wrong = {t: f"def {problems[t].entry_point}(*args):\n    return None\n" for t in TASKS}
    plan = {TASKS[0]: [right], TASKS[1]: [wrong, right], TASKS[2]: [wrong, wrong], TASKS[3]: [wrong, right]}
    rows = [{"task_id": t, "solution": answers[t]} for t, sequence in plan.items() for answers in sequence]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def real_run_folder(folder: Path) -> Path:
    """A run folder written by a real iterative replay run (no MLflow, no memory)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    samples = mixed_samples(folder.parent / "samples.jsonl")
    overrides = [
        "model=replay",
        f"model.samples={samples}",
        "mode=iterative",
        "max_iterations=2",
        "checkpoint_interval=1",
        f"problems=[{','.join(TASKS)}]",
        "tracking=off",
        "cortex=off",
    ]
    asyncio.run(run_job(folder, *overrides))
    return folder
