"""The ``mlflow gc`` command docs/tracking.md quotes works as written on a koderz-style store."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient

DOC = Path(__file__).resolve().parents[2] / "docs" / "tracking.md"


def test_the_quoted_gc_command_deletes_a_deleted_run_for_good(tmp_path: Path) -> None:
    quoted = re.search(r"`(mlflow gc [^`]+)`", DOC.read_text().replace("\n  ", " "))
    assert quoted is not None
    (tmp_path / "outputs").mkdir()
    client = MlflowClient("sqlite:///" + str(tmp_path / "outputs" / "mlflow.db"))
    experiment = client.create_experiment("koderz-humaneval", artifact_location="outputs/mlartifacts")
    run = client.create_run(experiment)
    client.delete_run(run.info.run_id)

    args = shlex.split(quoted.group(1))
    done = subprocess.run(
        [sys.executable, "-m", "mlflow", *args[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Run with ID {run.info.run_id} has been permanently deleted" in done.stdout + done.stderr
