"""The real ``python -m koderz`` with an unreachable tracking server: a warning, never fatal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("no_stray_processes")  # no process outlives a command


def koderz(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "koderz", *args, "cortex=off", "end=2"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_an_unreachable_tracking_server_warns_once_and_keeps_every_file(tmp_path: Path) -> None:
    done = koderz(tmp_path, "tracking.uri=http://127.0.0.1:1")
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert output.count("MLflow tracking to http://127.0.0.1:1 failed") == 1
    folder = next((tmp_path / "outputs" / "runs").glob("*/*"))
    assert json.loads((folder / "results.json").read_text())["summary"]["passed"] == 2
    assert {"results.jsonl", "samples.jsonl", "timing.json", "traces.jsonl", "config.yaml"} <= {
        p.name for p in folder.iterdir()
    }
