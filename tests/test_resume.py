"""``resume=DIR`` through the real CLI: the original command line is accepted, a second run folder never made."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from koderz.errors import ExitCode
from tests.support.env import run_koderz

ORIGINAL = ["dataset=humaneval_plus", "end=2", "n_samples=1", "tracking=off", "cortex=off"]
DEADLINE = 180.0  # seconds a command may take on a loaded machine


def koderz(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_koderz(cwd, *args, timeout=DEADLINE)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(working directory, run folder) of the original command, finished."""
    cwd = tmp_path_factory.mktemp("resume")
    done = koderz(cwd, *ORIGINAL)
    assert done.returncode == 0, done.stderr
    (folder,) = (cwd / "outputs" / "runs").glob("*/*")
    return cwd, folder


def folders(cwd: Path) -> list[Path]:
    return sorted(p for p in cwd.rglob("*") if p.is_dir() and ".hydra" not in p.parts)


def test_the_original_command_with_resume_appended_is_accepted(finished_run) -> None:
    cwd, folder = finished_run
    done = koderz(cwd, *ORIGINAL, f"resume={folder}")
    assert done.returncode == 0, done.stderr
    assert "would change" not in done.stderr and f"nothing to resume: {folder}" in done.stderr


def test_values_equal_to_the_saved_ones_are_accepted_silently(finished_run) -> None:
    """Not typed in the original command, but equal to what the run used: a key, and a group."""
    cwd, folder = finished_run
    done = koderz(cwd, f"resume={folder}", "model=reference", "test_timeout=3.0", "dataset=humaneval_plus")
    assert done.returncode == 0, done.stderr
    assert "would change" not in done.stderr and "nothing to resume" in done.stderr


@pytest.mark.parametrize("override", ["dataset=humaneval", "experiment=evalplus", "n_samples=2"])
def test_a_value_that_differs_is_refused_with_one_line(finished_run, override: str) -> None:
    cwd, folder = finished_run
    done = koderz(cwd, f"resume={folder}", override)
    assert done.returncode == ExitCode.BAD_INPUT
    (line,) = done.stderr.strip().splitlines()
    assert line == (
        f"koderz: error: resume={folder}: {override} would change the experiment; on resume only endpoints,"
        " keys, timeouts, retries, concurrency and logging may change"
    )


@pytest.mark.parametrize("key", ["hydra.run.dir", "hydra.sweep.dir", "+hydra.run.dir"])
def test_a_run_folder_beside_resume_is_refused_and_no_second_folder_made(finished_run, key: str) -> None:
    cwd, folder = finished_run
    before = folders(cwd)
    elsewhere = cwd / "elsewhere"
    done = koderz(cwd, *ORIGINAL, f"resume={folder}", f"{key}={elsewhere}")
    assert done.returncode == ExitCode.BAD_INPUT
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"koderz: error: {key}={elsewhere}: a resumed run continues in its own folder")
    assert folders(cwd) == before and not elsewhere.exists()
