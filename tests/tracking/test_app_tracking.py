"""The real ``python -m koderz`` with tracking on: one run per job, sweeps nested, never fatal."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def koderz(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.run([sys.executable, "-m", "koderz", *args, "cortex=off", "end=2"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def runs_in(store: Path) -> list:
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{store}")
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_sweep_is_one_parent_run_with_a_child_per_job(tmp_path: Path, launcher: str) -> None:
    extra = []
    if launcher == "joblib":
        if importlib.util.find_spec("hydra_plugins.hydra_joblib_launcher") is None:
            pytest.skip("hydra-joblib-launcher is not installed (pip install -e '.[joblib]')")
        extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    done = koderz(tmp_path, "-m", "mode=zero_shot,iterative", *extra)
    assert done.returncode == 0, done.stderr
    runs = runs_in(tmp_path / "outputs" / "mlflow.db")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 2 and len(runs) == 3
    assert sorted(r.info.run_name for r in children) == ["reference-iterative-humaneval", "reference-zero_shot-humaneval"]
    assert all(c.data.metrics["pass_rate"] == 1.0 for c in children)


def test_an_unreachable_tracking_server_warns_once_and_keeps_every_file(tmp_path: Path) -> None:
    done = koderz(tmp_path, "tracking.uri=http://127.0.0.1:1")
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert output.count("MLflow tracking failed") == 1
    folder = next((tmp_path / "outputs" / "runs").glob("*/*"))
    assert json.loads((folder / "results.json").read_text())["summary"]["passed"] == 2
    assert {"results.jsonl", "samples.jsonl", "timing.json", "traces.jsonl", "config.yaml"} <= {
        p.name for p in folder.iterdir()}
