"""Bad input found before the run: one line naming every culprit, exit 2, nothing left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.env import run_koderz


def test_outputs_that_is_a_file_is_one_line_naming_hydra_run_dir(tmp_path: Path) -> None:
    (tmp_path / "outputs").write_text("not a folder")

    done = run_koderz(tmp_path, "end=1", "tracking=off", "cortex=off")

    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("koderz: error: hydra.run.dir") and len(done.stderr.splitlines()) == 1, done.stderr
    assert "Not a directory" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs"]


def test_missing_keys_of_several_roles_are_named_together_and_nothing_is_left(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}

    done = run_koderz(tmp_path, "model=gpt-4o-mini", "spec_model=claude-haiku-4-5", "end=1", env=env)

    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "OPENAI_API_KEY (for model=gpt-4o-mini)" in done.stderr
    assert "ANTHROPIC_API_KEY (for spec_model=claude-haiku-4-5)" in done.stderr
    assert list(tmp_path.iterdir()) == []  # no outputs/, no store, no run folder


def test_hydra_job_chdir_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    done = run_koderz(tmp_path, "hydra.job.chdir=true", "end=1")

    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("koderz: error: hydra.job.chdir=true: koderz keeps its stores")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("sweep", "needle"),
    [
        (["model=gpt4o,reference", "end=2"], "model=gpt4o,reference: no option 'gpt4o' in config group model"),
        (["end=2,500"], "end=500: dataset humaneval has only 164 tasks"),
    ],
    ids=["typo in one value", "one job out of range"],
)
def test_a_sweep_with_one_bad_job_starts_nothing(tmp_path: Path, sweep: list[str], needle: str) -> None:
    """Every job is composed and checked before the sweep folder, the MLflow parent run or any job."""
    done = run_koderz(tmp_path, "-m", *sweep)

    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert needle in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_input_found_at_start_up_leaves_no_memory_store_and_names_no_run_folder(tmp_path: Path) -> None:
    """A replay without its file, found when the models are built: no outputs/ (no cortex.db), and
    no 'run folder' line for a folder that is then removed."""
    done = run_koderz(tmp_path, "model=replay", "end=1")

    assert done.returncode == 2, done.stderr
    assert "model.samples is required" in done.stderr and "run folder" not in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []
