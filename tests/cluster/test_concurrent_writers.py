"""Slow: four koderz jobs at once writing the same local stores, under joblib and under SLURM.

The jobs share the working directory, so they write one ``outputs/mlflow.db`` (MLflow's
SQLite store), one ``outputs/cortex.db`` (each job's embedded Cortex server) and one
result cache ``outputs/cache/results.sqlite``. The coder is a scripted OpenAI-compatible
fake (so the result cache takes part: built-in models are never cached) that answers a
wrong program. Every record must be in its store exactly once and no job may report
``database is locked``.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import pytest

from tests.support.env import clean_env
from tests.support.fakes.scripted_server import Reply, ScriptedServer, fenced, prompt_text
from tests.support.sweep_records import (
    assert_cache_rows_once,
    assert_complete_run_folder,
    assert_memories_once,
    assert_one_parent_with_children,
    job_folders,
    run_sweep,
    sacct_jobs,
    submitit_job_ids,
)

pytestmark = pytest.mark.slow

ENTRY_POINT = re.compile(r"Implement the Python function `([^`]+)`")


def wrong_answer(body: dict[str, Any], route: str, call_index: int) -> Reply:
    """The asked-for function, returning None: a wrong answer (failed verdicts are cached)."""
    name = ENTRY_POINT.search(prompt_text(body))
    return Reply(fenced(f"def {name.group(1) if name else 'f'}(*args, **kwargs):\n    return None\n"))


FOUR_JOBS = (
    "dataset=humaneval,humaneval_plus_mini",
    "mode=zero_shot,iterative",
    "end=3",
    "max_iterations=2",
    "checkpoints.enabled=false",
    "cache=true",  # the scripted server is a local one without a weights digest: cache=auto would not cache
)


def _sweep_on_local_stores(tmp_path: Path, env: dict[str, str], *launcher: str) -> list[Path]:
    with ScriptedServer(wrong_answer).in_thread() as server:
        done = run_sweep(
            tmp_path,
            clean_env(OPENAI_API_KEY="sk-test-scripted", **env),
            *launcher,
            "model=gpt-4o-mini",
            f"model.base_url={server.openai_url}",
            *FOUR_JOBS,
        )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "database is locked" not in done.stderr and "Traceback" not in done.stderr, done.stderr[-4000:]
    sweep_dir = tmp_path / "sweep"
    folders = job_folders(sweep_dir)
    assert len(folders) == 4
    runs = [assert_complete_run_folder(folder, problems=3) for folder in folders]
    assert all(r["summary"]["cached"] == 0 for r in runs)  # four distinct jobs: every result computed once
    assert {p["status"] for r in runs for p in r["problems"]} == {"failed"}  # wrong answers, judged
    outputs = tmp_path / "outputs"
    assert_one_parent_with_children(mlflow.MlflowClient(f"sqlite:///{outputs / 'mlflow.db'}"), sweep_dir, folders)
    assert_memories_once(outputs / "cortex.db", runs)
    assert_cache_rows_once(outputs / "cache" / "results.sqlite", runs)
    return folders


def test_four_joblib_jobs_at_once_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="pip install 'koderz[joblib]'")
    _sweep_on_local_stores(tmp_path, {}, "hydra/launcher=joblib", "hydra.launcher.n_jobs=4")


def test_four_slurm_jobs_at_once_lose_and_duplicate_nothing(tmp_path: Path, slurm_conf: str) -> None:
    _sweep_on_local_stores(
        tmp_path,
        {"SLURM_CONF": slurm_conf},
        "hydra/launcher=slurm",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=1",
        "+hydra.launcher.additional_parameters.oversubscribe=true",  # 4 jobs share the 2 cores
    )
    job_ids = submitit_job_ids(tmp_path / "sweep")
    jobs = sacct_jobs(clean_env(SLURM_CONF=slurm_conf), job_ids)
    assert len(job_ids) == 4 and [jobs[j]["state"] for j in job_ids] == ["COMPLETED"] * 4
    starts = [datetime.fromisoformat(jobs[j]["start"]) for j in job_ids]
    ends = [datetime.fromisoformat(jobs[j]["end"]) for j in job_ids]
    assert max(starts) < min(ends)  # all four ran at the same time
