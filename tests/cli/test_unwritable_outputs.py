"""An ``outputs`` that cannot hold a run folder: one line naming the key that places it, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_outputs_that_is_a_file_is_one_line_naming_hydra_run_dir(tmp_path: Path) -> None:
    (tmp_path / "outputs").write_text("not a folder")

    done = subprocess.run(
        [sys.executable, "-m", "koderz", "end=1", "tracking=off", "cortex=off"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("koderz: error: hydra.run.dir") and len(done.stderr.splitlines()) == 1, done.stderr
    assert "Not a directory" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs"]
