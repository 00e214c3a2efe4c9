"""``mode=speed`` leaves a normal run folder: config.yaml, run.json, speed.json (typed rows)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from koderz.records import RunFolder
from tests.support.env import clean_env


def test_the_speed_test_writes_a_run_folder(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "koderz", "mode=speed", "tracking=off", "speed.repeats=2"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    (path,) = (tmp_path / "outputs" / "runs").glob("*/*")
    folder = RunFolder(path)
    assert folder.is_run_folder() and folder.read_config()["mode"]["name"] == "speed"
    (row,) = folder.read_speed().rows  # every role is the reference model: one row
    assert row.model == "reference" and row.calls == 3 * 2 and row.errors == 0
    state = folder.read_state()
    assert state is not None and state.status == "finished"
    assert (path / "koderz.log").is_file()
