"""What a finished sweep must have left, store by store: each record present exactly once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RUN_FILES = (
    "config.yaml",
    "results.json",
    "results.jsonl",
    "samples.jsonl",
    "traces.jsonl",
    "timing.json",
    "koderz.log",
)


def run_sweep(cwd: Path, env: dict[str, str], *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    """The real ``python -m koderz -m ARGS`` in ``cwd``; its sweep folder is ``cwd/sweep``."""
    return subprocess.run(
        [sys.executable, "-m", "koderz", "-m", f"hydra.sweep.dir={cwd / 'sweep'}", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def job_folders(sweep_dir: Path) -> list[Path]:
    """The jobs' run folders (an override holding a URL nests the folder: ``0_cortex.url=http:/...``)."""
    return sorted(p.parent for p in sweep_dir.rglob(".hydra") if p.is_dir() and p.parent != sweep_dir)


def assert_complete_run_folder(folder: Path, problems: int) -> dict[str, Any]:
    """Every file of the run folder, one line per problem; returns results.json."""
    missing = [name for name in RUN_FILES if not (folder / name).is_file()]
    assert not missing, f"{folder}: missing {missing}"
    results = json.loads((folder / "results.json").read_text())
    lines = (folder / "results.jsonl").read_text().splitlines()
    assert len(lines) == problems == results["summary"]["problems"], folder
    assert Counter(json.loads(line)["task_id"] for line in lines) == Counter(
        p["task_id"] for p in results["problems"]
    ), folder
    assert len((folder / "traces.jsonl").read_text().splitlines()) == problems, folder
    assert results["summary"]["memory_lost_writes"] == 0, folder
    log = (folder / "koderz.log").read_text()
    assert "database is locked" not in log and "Traceback" not in log, log[-3000:]
    return results


def assert_one_parent_with_children(client: Any, sweep_dir: Path, folders: list[Path]) -> None:
    """One parent run for the sweep; each job folder logged exactly once, nested under it."""
    runs = [
        run
        for experiment in client.search_experiments()
        for run in client.search_runs([experiment.experiment_id], max_results=1000)
        if run.data.tags.get("koderz.sweep_id") == str(sweep_dir)
    ]
    parents = [r for r in runs if r.data.tags.get("koderz.sweep") == "parent"]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == len(folders) + 1 and len(children) == len(folders)
    assert Counter(c.data.tags["koderz.run_dir"] for c in children) == Counter(str(f.resolve()) for f in folders)
    assert all(r.info.status == "FINISHED" for r in runs)
    assert parent.data.metrics["children"] == len(folders)
    for child in children:
        traces = client.search_traces(locations=[child.info.experiment_id], run_id=child.info.run_id)
        assert len(traces) == child.data.metrics["problems"], child.info.run_name


def memory_tags(db: Path) -> list[list[str]]:
    """The tags of every memory in a Cortex database (read-only)."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return [json.loads(row[0]) for row in conn.execute("SELECT tags FROM memories")]


def assert_memories_once(db: Path, runs: list[dict[str, Any]]) -> None:
    """Per job: one summary memory, one result memory per problem, one attempt memory per attempt."""
    tags = memory_tags(db)
    for results in runs:
        run_id = results["summary"]["run_id"]
        mine = [t for t in tags if t and t[0] == run_id]
        assert Counter(tuple(t) for t in mine if t[-1] == "summary") == {(run_id, "summary"): 1}, run_id
        assert Counter(t[1] for t in mine if t[-1] == "result") == Counter(p["task_id"] for p in results["problems"])
        attempts = Counter(t[1] for t in mine if t[-1] == "attempt")
        assert attempts == Counter({p["task_id"]: p["attempts"] for p in results["problems"]}), run_id


def assert_cache_rows_once(cache: Path, runs: list[dict[str, Any]]) -> None:
    """One result-cache row per (job, problem): the task ids of all jobs, no key twice."""
    with closing(sqlite3.connect(f"file:{cache}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT key, task_id FROM results").fetchall()
    assert len({key for key, _ in rows}) == len(rows)
    assert Counter(task for _, task in rows) == Counter(p["task_id"] for r in runs for p in r["problems"])


def sacct_jobs(slurm_env: dict[str, str], job_ids: list[str], seconds: float = 120) -> dict[str, dict[str, str]]:
    """State, start and end of each job in ``sacct``, once all are COMPLETED or the deadline passed.

    Accounting reaches slurmdbd a moment after a job ends, so this polls.
    """
    deadline = time.monotonic() + seconds
    while True:
        out = subprocess.run(
            ["sacct", "-X", "-n", "-P", "-o", "JobID,State,Start,End", "-j", ",".join(job_ids)],
            env=slurm_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        jobs = {
            job: {"state": state, "start": start, "end": end}
            for job, state, start, end in (line.split("|") for line in out.splitlines() if line)
        }
        done = set(job_ids) <= set(jobs) and all(jobs[j]["state"] == "COMPLETED" for j in job_ids)
        if done or time.monotonic() > deadline:
            return jobs
        time.sleep(1)


def submitit_job_ids(sweep_dir: Path) -> list[str]:
    """SLURM job ids of the sweep's jobs (submitit keeps one folder per array task: ``<job>_<task>``)."""
    return sorted(p.name for p in (sweep_dir / ".submitit").iterdir() if p.is_dir() and "_" in p.name)
