"""Tracking while the run runs: the real ``python -m koderz`` with its worker, a real SQLite store.

A replay sample that sleeps keeps one problem running while the test looks into the store; the
test signals only the koderz process it started (its own session), and every wait has a deadline
and checks that process is still alive.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from koderz.datasets.loaders import load_dataset
from koderz.records import RunFolder
from koderz.tracking.follow import CPU_LINE
from koderz.tracking.logger import SYNC_CPU_LINE
from tests.support.mlflow_runs import TASKS, fresh_store, global_tracking_uri

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("no_stray_processes")  # no process outlives a command
DEADLINE = 240.0
T = TypeVar("T")


def write_samples(path: Path, *, slow: str | None = None) -> Path:
    """Each task's canonical program; ``slow``'s sleeps first (it stays running until interrupted)."""
    problems = {p.task_id: p for p in load_dataset("humaneval")}
    rows = []
    for task in TASKS:
        program = problems[task].reference_program
        if task == slow:
            program = "import time\ntime.sleep(600)\n" + program
        rows.append({"task_id": task, "solution": program})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def koderz_args(samples: Path, folder: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "koderz",
        "model=replay",
        f"model.samples={samples}",
        f"problems=[{','.join(TASKS)}]",
        "cortex=off",
        "test_timeout=100",  # the sleeping sample is stopped by the interrupt, not by the sandbox
        f"hydra.run.dir={folder}",
        *extra,
    ]


def environment(uri: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KODERZ_MLFLOW"))}
    if uri:
        env["MLFLOW_TRACKING_URI"] = uri
    env["PYTHONPATH"] = str(REPO)
    return env


def start(args: list[str], cwd: Path, env: dict[str, str], **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(args, cwd=cwd, env=env, text=True, start_new_session=True, **kwargs)


def wait_for(check: Callable[[], T | None], proc: subprocess.Popen[str], what: str) -> T:
    """``check()`` once it is truthy; fails at the deadline or when ``proc`` ends first."""
    deadline = time.monotonic() + DEADLINE
    while True:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"koderz ended ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {DEADLINE:.0f} s")
        time.sleep(0.2)


def stop(proc: subprocess.Popen[str]) -> None:
    """End our koderz process if a failed assertion left it running (its whole session)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def logged_problems(folder: Path, count: int) -> Any:
    progress = RunFolder(folder).read_tracking()
    return progress if progress is not None and len(progress.logged) >= count else None


def store_view(uri: str, run_id: str, experiment_id: str) -> dict[str, Any]:
    import mlflow

    client = mlflow.MlflowClient(uri)
    with global_tracking_uri(uri):
        run = client.get_run(run_id)
        traces = mlflow.search_traces(locations=[experiment_id], run_id=run_id, return_type="list")
        table = client.load_table(experiment_id, "problems.json", run_ids=[run_id])
        runs = client.search_runs([experiment_id])
    return {
        "run": run,
        "traces": sorted(t.info.tags["koderz.task_id"] for t in traces),
        "rows": sorted(table["task_id"]),
        "runs": [r.info.run_id for r in runs],
    }


def test_the_run_is_live_in_mlflow_then_killed_on_ctrl_c_then_resumed_into_the_same_run(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    uri = fresh_store(tmp_path_factory, tmp_path / "mlflow.db")
    samples = write_samples(tmp_path / "samples.jsonl", slow=TASKS[3])
    folder = tmp_path / "run"
    proc = start(
        koderz_args(samples, folder), tmp_path, environment(uri), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        progress = wait_for(lambda: logged_problems(folder, 3), proc, "three problems logged")
        view = store_view(uri, progress.mlflow_run_id, progress.experiment_id)
        assert proc.poll() is None and TASKS[3] not in {r.task_id for r in RunFolder(folder).records()}
        run = view["run"]
        assert run.info.status == "RUNNING"
        assert run.data.params["model.name"] == "replay" and run.data.tags["koderz.status"] == "running"
        assert run.data.metrics["passed"] == 3 and run.data.metrics["pass_rate"] == 1.0
        assert view["traces"] == sorted(TASKS[:3]) and view["rows"] == sorted(TASKS[:3])
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=DEADLINE) == 130
    finally:
        stop(proc)
    killed = store_view(uri, progress.mlflow_run_id, progress.experiment_id)["run"]
    assert killed.info.status == "KILLED"
    assert killed.data.tags["koderz.interrupted"] == "true" and killed.data.tags["koderz.status"] == "interrupted"
    assert killed.data.metrics["run.not_run"] == 1

    write_samples(samples)  # the resumed run gets a quick answer for the last task
    done = subprocess.run(
        [sys.executable, "-m", "koderz", f"resume={folder}"],
        cwd=tmp_path,
        env=environment(uri),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 0, done.stderr
    view = store_view(uri, progress.mlflow_run_id, progress.experiment_id)
    assert view["runs"] == [progress.mlflow_run_id]  # one run: the same one, continued
    run = view["run"]
    assert run.info.status == "FINISHED" and run.data.tags["koderz.status"] == "complete"
    assert "koderz.interrupted" not in run.data.tags
    assert run.data.tags["koderz.containment"] == RunFolder(folder).read_results().summary.mechanism
    assert run.data.metrics["pass_rate"] == 1.0 and run.data.metrics["unanswered"] == 0
    assert view["traces"] == sorted(TASKS) and view["rows"] == sorted(TASKS)
    # the final flush ran after the records were written; the run's timing counts it
    record = RunFolder(folder)
    state, timing = record.read_state(), record.read_timing()
    assert state is not None and timing is not None
    flush = [s for s in state.parts[-1].spans if s.name == "tracking_flush"]
    assert len(flush) == 1 and state.parts[-1].ended == flush[0].end
    assert timing.phase_totals["tracking_flush"].count == len(state.parts) == 2 and "tracking" in timing.categories
    assert record.read_results().summary.duration == timing.total_duration == sum(p.duration for p in state.parts)
    # the resumed run's worker logged one problem (the other three were logged before): it says with
    # how much CPU, then its own CPU in all (benchmarks/default_path.py splits the two)
    lines = record.tracking_log_path.read_text().splitlines()
    synced = [i for i, line in enumerate(lines) if re.search(rf"{SYNC_CPU_LINE}: 1, with [\d.]+ s of CPU$", line)]
    worker = [i for i, line in enumerate(lines) if CPU_LINE in line]
    assert len(synced) == 1 and worker and worker[-1] > synced[0]


def test_the_worker_ends_with_a_killed_run_and_marks_its_mlflow_run_killed(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """SIGKILL to the run's whole session (the worker has its own): the worker finds its pipe
    closed, marks the MLflow run killed and exits by itself; no_stray_processes checks nothing
    is left."""
    uri = fresh_store(tmp_path_factory, tmp_path / "mlflow.db")
    samples = write_samples(tmp_path / "samples.jsonl", slow=TASKS[3])
    folder = tmp_path / "run"
    proc = start(
        koderz_args(samples, folder), tmp_path, environment(uri), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        progress = wait_for(lambda: logged_problems(folder, 3), proc, "three problems logged")
        (worker,) = [p for p in psutil.Process(proc.pid).children() if "koderz.tracking" in " ".join(p.cmdline())]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=DEADLINE)
        worker.wait(timeout=DEADLINE)  # psutil.TimeoutExpired fails the test
    finally:
        stop(proc)
    run = store_view(uri, progress.mlflow_run_id, progress.experiment_id)["run"]
    assert run.info.status == "KILLED" and run.data.tags["koderz.tracking"] == "incomplete"
    assert run.data.tags["koderz.status"] == "interrupted"


def _lines(stream: Any, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


@pytest.mark.slow
def test_ctrl_c_during_the_final_flush_prints_a_command_that_finishes_the_logging(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"  # a new store: MLflow makes its tables in the flush
    samples = write_samples(tmp_path / "samples.jsonl")
    folder = tmp_path / "run"
    # the worker migrates the new store itself: a flush long enough to interrupt
    env = environment(uri)
    proc = start(koderz_args(samples, folder), tmp_path, env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(proc.stderr, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:

        def flushing() -> bool:
            while not lines.empty():
                seen.append(lines.get())
            return any(line.startswith("MLflow: logging the rest") for line in seen)

        wait_for(flushing, proc, "the final flush")
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=DEADLINE) == 130
    finally:
        stop(proc)
    reader.join(timeout=30)
    assert proc.stderr is not None
    proc.stderr.close()
    while not lines.empty():
        seen.append(lines.get())
    assert not any("Traceback" in line for line in seen), "".join(seen)
    stopped = [line for line in seen if line.startswith("koderz: MLflow logging stopped")]
    assert len(stopped) == 1, "".join(seen)
    progress = RunFolder(folder).read_tracking()
    assert progress is not None and progress.stopped
    import mlflow

    run = mlflow.MlflowClient(uri).get_run(progress.mlflow_run_id)
    assert run.info.status == "KILLED" and run.data.tags["koderz.tracking"] == "incomplete"

    command = shlex.split(stopped[0].split("finish it with: ", 1)[1])
    assert command[:4] == ["python", "-m", "koderz.tracking", "log"]
    done = subprocess.run(
        [sys.executable, *command[1:]],
        cwd=tmp_path,
        env=environment(None),  # as printed: the folder knows its store
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == progress.mlflow_run_id
    view = store_view(uri, progress.mlflow_run_id, progress.experiment_id)
    assert view["run"].info.status == "FINISHED" and view["run"].data.tags["koderz.tracking"] == "complete"
    assert view["traces"] == sorted(TASKS) and view["rows"] == sorted(TASKS)
    assert view["runs"] == [progress.mlflow_run_id]


def test_tracking_off_never_starts_the_worker_nor_on_resume(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    samples = write_samples(tmp_path / "samples.jsonl", slow=TASKS[3])
    folder = tmp_path / "run"
    env = environment(f"sqlite:///{store}")
    proc = start(
        koderz_args(samples, folder, "tracking=off"),
        tmp_path,
        env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: len(RunFolder(folder).records()) == 3, proc, "three problems finished")
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=DEADLINE) == 130
    finally:
        stop(proc)
    write_samples(samples)
    done = subprocess.run(
        [sys.executable, "-m", "koderz", f"resume={folder}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 0, done.stderr
    assert len(RunFolder(folder).records()) == len(TASKS)
    assert RunFolder(folder).read_tracking() is None
    assert not RunFolder(folder).tracking_log_path.exists()  # the worker was never spawned
    assert not store.exists() and not (tmp_path / "outputs" / "mlflow.db").exists()


def test_a_run_that_never_starts_leaves_no_folder_and_no_store(tmp_path: Path) -> None:
    store = tmp_path / "new" / "mlflow.db"
    samples = write_samples(tmp_path / "samples.jsonl")
    folder = tmp_path / "run"
    args = [*koderz_args(samples, folder), "problems=[HumanEval/999]"]  # refused once the dataset is loaded
    env = environment(f"sqlite:///{store}")
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=DEADLINE)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("koderz: error: problems: HumanEval/999")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.jsonl"]  # no run folder, no store


def test_a_bad_value_starts_no_worker_and_leaves_the_store_as_it_was(tmp_path: Path, tmp_path_factory) -> None:
    uri = fresh_store(tmp_path_factory, tmp_path / "mlflow.db")
    samples = write_samples(tmp_path / "samples.jsonl")
    folder = tmp_path / "run"
    args = [*koderz_args(samples, folder), "test_timeout=0"]  # refused when the plan is made
    store = tmp_path / "mlflow.db"
    before = store.read_bytes()
    done = subprocess.run(args, cwd=tmp_path, env=environment(uri), capture_output=True, text=True, timeout=DEADLINE)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == ["koderz: error: test_timeout=0.0: must be positive"]
    assert not folder.exists()
    assert store.read_bytes() == before  # no worker opened it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db", "samples.jsonl"]


@pytest.mark.slow
def test_ctrl_c_in_a_sweep_stops_the_sweep_and_names_the_interrupted_job(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Job 0 of two is interrupted: the second never starts, the console names job 0, the exit
    code is 130 and the sweep's MLflow parent ends KILLED with job 0's run nested under it."""
    uri = fresh_store(tmp_path_factory, tmp_path / "mlflow.db")
    args = [sys.executable, "-m", "koderz", "-m", "concurrency=1,2", "cortex=off", f"hydra.sweep.dir={tmp_path}/sweep"]
    proc = start(args, tmp_path, environment(uri), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        results = tmp_path / "sweep" / "0_concurrency=1,cortex=off" / "results.jsonl"
        wait_for(lambda: results.is_file() and len(results.read_text().splitlines()) >= 3, proc, "three results")
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=DEADLINE)
    finally:
        stop(proc)
    assert proc.returncode == 130, err
    assert "koderz: interrupted; sweep" in err and "1 interrupted (0_concurrency=1,cortex=off)" in err
    assert not (tmp_path / "sweep" / "1_concurrency=2,cortex=off").exists()
    import mlflow

    client = mlflow.MlflowClient(uri)
    parent_id = (tmp_path / "sweep" / "mlflow_parent_run_id").read_text().strip()
    parent = client.get_run(parent_id)
    assert parent.info.status == "KILLED" and parent.data.tags["koderz.interrupted"] == "true"
    (child,) = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    assert child.info.status == "KILLED" and child.data.tags["koderz.status"] == "interrupted"


def test_the_worker_takes_idle_cpu_while_the_run_runs_and_normal_cpu_for_its_flush() -> None:
    from koderz.tracking.follow import may_raise_priority

    code = (
        "import os; from koderz.tracking.follow import run_in_background, run_in_foreground\n"
        "run_in_background(); during = (os.sched_getscheduler(0), os.nice(0))\n"
        "run_in_foreground(); print(*during, os.sched_getscheduler(0), os.nice(0))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    policies = [int(v) for v in done.stdout.split()]
    if may_raise_priority():  # SCHED_IDLE during the run, back to normal for the flush
        assert policies == [os.SCHED_IDLE, 0, os.SCHED_OTHER, 0]
    else:  # no way back to normal scheduling: nice 10 throughout
        assert policies == [os.SCHED_OTHER, 10, os.SCHED_OTHER, 10]
