"""The runner's record is true: kill -9 + resume, Ctrl-C, resuming a finished run, a failed start-up."""

from __future__ import annotations

import hashlib
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from koderz.errors import ExitCode
from koderz.records import RunFolder

QUIET = ["tracking=off", "cortex=off"]
DEADLINE = 180.0  # seconds any wait below may take on a loaded machine


def _start(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "koderz", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _koderz(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "koderz", *args], cwd=cwd, capture_output=True, text=True, timeout=DEADLINE
    )


def _wait_for_lines(proc: subprocess.Popen[str], root: Path, name: str, lines: int) -> Path:
    """The run folder once its ``name`` file has ``lines`` lines; fails if the process ends first."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        for path in root.glob(f"outputs/runs/*/*/{name}"):
            if len(path.read_text().splitlines()) >= lines:
                return path.parent
        if proc.poll() is not None:
            raise AssertionError(f"koderz exited ({proc.returncode}) before {name} had {lines} lines")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"{name} did not reach {lines} lines within {DEADLINE} s")


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_resume_after_kill_9_runs_only_what_is_missing_in_the_same_folder(tmp_path: Path) -> None:
    proc = _start(tmp_path, "end=40", *QUIET)
    folder = _wait_for_lines(proc, tmp_path, "results.jsonl", 5)
    proc.kill()  # kill -9 at whatever point the run is
    proc.wait(timeout=DEADLINE)
    before = (folder / "results.jsonl").read_text().splitlines(keepends=True)
    complete = [line for line in before if line.endswith("\n")]  # a torn last line is dropped on resume
    assert 5 <= len(complete) < 40 and not (folder / "results.json").exists()

    done = _koderz(tmp_path, f"resume={folder}")
    assert done.returncode == 0, done.stderr
    after = (folder / "results.jsonl").read_text().splitlines(keepends=True)
    assert after[: len(complete)] == complete  # earlier records byte for byte
    tasks = [json.loads(line)["task_id"] for line in after]
    assert sorted(tasks) == sorted(f"HumanEval/{i}" for i in range(40))  # each problem exactly once
    attempts = RunFolder(folder).attempts()
    assert sorted(a.task_id for a in attempts) == sorted(tasks)  # nothing ran twice
    assert [p.name for p in (tmp_path / "outputs" / "runs").glob("*/*")] == [folder.name]  # one folder
    log = (folder / "koderz.log").read_text()
    first_part, _, second_part = log.partition("resuming")
    assert "PASS" in first_part and second_part.count("PASS") == 40 - len(complete)  # one log, appended
    state = RunFolder(folder).read_state()
    assert state is not None and [p.status for p in state.parts] == ["killed", "finished"]
    results = RunFolder(folder).read_results()
    assert (results.summary.problems, results.summary.passed, results.summary.resumed) == (40, 40, 1)
    timing = results.timing
    assert len(timing.parts) == 2 and timing.total_duration == pytest.approx(sum(timing.parts))
    assert timing.problem_count == 40  # both parts' problems are in the timing


def test_resuming_a_finished_run_changes_nothing(tmp_path: Path) -> None:
    assert _koderz(tmp_path, "end=3", *QUIET).returncode == 0
    (folder,) = (tmp_path / "outputs" / "runs").glob("*/*")
    before = _hashes(folder)
    done = _koderz(tmp_path, f"resume={folder}")
    assert done.returncode == 0, done.stderr
    assert "nothing to resume" in done.stdout + done.stderr
    assert _hashes(folder) == before


def test_a_folder_from_before_tracking_json_still_resumes(tmp_path: Path) -> None:
    """run.json once held the MLflow run (now in tracking.json): such a folder is read as before."""
    assert _koderz(tmp_path, "end=2", *QUIET).returncode == 0
    (folder,) = (tmp_path / "outputs" / "runs").glob("*/*")
    state = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**state, "mlflow_run_id": None, "mlflow_uri": None}))
    done = _koderz(tmp_path, f"resume={folder}")
    assert done.returncode == 0, done.stderr
    assert "nothing to resume" in done.stdout + done.stderr


def test_resume_refuses_an_override_that_changes_the_experiment(tmp_path: Path) -> None:
    assert _koderz(tmp_path, "end=2", *QUIET).returncode == 0
    (folder,) = (tmp_path / "outputs" / "runs").glob("*/*")
    done = _koderz(tmp_path, f"resume={folder}", "n_samples=5")
    assert done.returncode == ExitCode.BAD_INPUT
    (line,) = done.stderr.strip().splitlines()
    assert "n_samples=5" in line and "would change the experiment" in line


def test_first_ctrl_c_stops_the_run_and_says_so_everywhere(tmp_path: Path) -> None:
    proc = _start(tmp_path, *QUIET)
    folder = _wait_for_lines(proc, tmp_path, "results.jsonl", 3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    summary = RunFolder(folder).read_results().summary
    finished = len((folder / "results.jsonl").read_text().splitlines())
    assert summary.interrupted and summary.stopped_reason == "interrupted"
    assert summary.problems == 164 and summary.answered == finished and summary.not_run == 164 - finished
    assert "INTERRUPTED" in out and f"interrupted: {finished} of 164 problems answered" in out
    assert err.strip().splitlines()[-1] == f"koderz: finish the run with: python -m koderz resume={folder}"
    state = RunFolder(folder).read_state()
    assert state is not None and state.parts[-1].status == "interrupted"


def test_second_ctrl_c_exits_at_once(tmp_path: Path) -> None:
    sleeper = "import time\ndef has_close_elements(numbers, threshold):\n    time.sleep(1000)\n"
    (tmp_path / "slow.jsonl").write_text(json.dumps({"task_id": "HumanEval/0", "solution": sleeper}) + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "koderz", "model=replay", "model.samples=slow.jsonl", "end=1", *QUIET],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # the log (stdout) and the last words (stderr) in one stream
        text=True,
    )
    _wait_for_lines(proc, tmp_path, "run.json", 1)
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None

    def read_lines() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=read_lines, daemon=True).start()
    proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + DEADLINE
    while "Ctrl-C: no new problems" not in lines.get(timeout=max(0.0, deadline - time.monotonic())):
        pass  # the first Ctrl-C was taken; now the second
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=DEADLINE)
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert proc.returncode == ExitCode.INTERRUPTED
    assert any("interrupted twice, exiting now" in line for line in rest)


def test_a_failed_start_up_leaves_no_run_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    done = _koderz(tmp_path, "model=gpt-4o-mini", *QUIET)
    assert done.returncode == ExitCode.BAD_INPUT
    assert "OPENAI_API_KEY" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not list((tmp_path / "outputs" / "runs").glob("*/*"))
