"""``python -m koderz`` as a user runs it: a single run, a sweep, and every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

QUIET = ["tracking=off", "cortex=off"]


def koderz(cwd: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "koderz", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def only_run_folder(root: Path) -> Path:
    folders = [p for p in (root / "outputs" / "runs").glob("*/*") if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def test_single_run_writes_a_complete_run_folder(tmp_path: Path) -> None:
    done = koderz(tmp_path, "end=4", "mode=iterative", *QUIET)
    assert done.returncode == 0, done.stderr
    folder = only_run_folder(tmp_path)
    assert {"config.yaml", "results.json", "results.jsonl", "samples.jsonl", "timing.json", "koderz.log"} <= {
        p.name for p in folder.iterdir()
    }
    results = json.loads((folder / "results.json").read_text())
    summary = results["summary"]
    assert (summary["problems"], summary["passed"], summary["pass_rate"]) == (4, 4, 1.0)
    assert [p["task_id"] for p in results["problems"]] == [f"HumanEval/{i}" for i in range(4)]
    for key in ("task_id", "passed", "attempts", "tests_passed", "tests_total", "error", "duration", "tokens", "cost"):
        assert key in results["problems"][0]
    assert len((folder / "results.jsonl").read_text().splitlines()) == 4
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert {s["sample_index"] for s in samples} == {0} and all(s["passed"] for s in samples)
    assert set(samples[0]) >= {"task_id", "sample_index", "solution", "passed", "tests_passed", "tests_total", "status"}
    assert "def has_close_elements" in samples[0]["solution"]
    assert "run folder:" in done.stdout + done.stderr


def test_multirun_sweep_writes_one_folder_per_job(tmp_path: Path) -> None:
    done = koderz(tmp_path, "-m", "mode=zero_shot,iterative", "end=2", *QUIET)
    assert done.returncode == 0, done.stderr
    jobs = sorted(p.name for p in (tmp_path / "outputs" / "sweeps").glob("*/*/*") if p.is_dir())
    assert len(jobs) == 2 and jobs[0].startswith("0_") and "mode=zero_shot" in jobs[0]
    for job in (tmp_path / "outputs" / "sweeps").glob("*/*/*_mode=*"):
        assert json.loads((job / "results.json").read_text())["summary"]["passed"] == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["model=no-such-model"], "model=no-such-model"),
        (["dataset=nope"], "dataset=nope"),
        (["concurrency=0"], "concurrency=0"),
        (["start=5", "end=2"], "end=2"),
        (["problems=[HumanEval/999]"], "HumanEval/999"),
        (["max_iterations=-1"], "max_iterations=-1"),
        (["model=replay", "model.samples=missing.jsonl"], "missing.jsonl"),
        (["model=replay", "model.samples=bad.jsonl"], "line 2"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path, args: list[str], needle: str) -> None:
    (tmp_path / "bad.jsonl").write_text('{"task_id": "HumanEval/0", "solution": "x = 1"}\n{oops\n')
    done = koderz(tmp_path, *args, *QUIET, timeout=60)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_role_shorthand_picks_a_model_file_for_that_role(tmp_path: Path) -> None:
    (tmp_path / "s.jsonl").write_text('{"task_id": "HumanEval/0", "completion": "    return False\\n"}\n')
    done = koderz(tmp_path, "spec_model=replay", "spec_model.samples=s.jsonl", "end=1", *QUIET, timeout=60)
    assert done.returncode == 0, done.stderr
    config = (only_run_folder(tmp_path) / "config.yaml").read_text()
    assert "spec_model:\n  provider: replay" in config


def test_the_koderz_console_script_equals_python_m_koderz(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("koderz")
    if not script.exists():
        pytest.skip("the console script is not installed next to this interpreter")
    done = subprocess.run([str(script), "end=2", *QUIET], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads((only_run_folder(tmp_path) / "results.json").read_text())["summary"]["passed"] == 2
