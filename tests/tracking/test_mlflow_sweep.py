"""Hydra multirun with the MLflow sweep callback: one parent run, every job nested under it.

These run the real ``python -m koderz -m ...``. Hydra only warns on callback errors and
still exits 0, so the tests count the runs in the store.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.mlflow_runs import fresh_store, global_tracking_uri

REPO = Path(__file__).resolve().parents[2]


def _run_sweep(tmp_path: Path, uri: str, *extra: str) -> subprocess.CompletedProcess:
    """The real app: ``python -m koderz -m mode=zero_shot,iterative ...`` (two jobs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KODERZ_MLFLOW"))}
    env["MLFLOW_TRACKING_URI"] = uri
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "koderz",
            "-m",
            "mode=zero_shot,iterative",
            "cortex=off",
            "problems=[HumanEval/0]",
            "hydra.sweep.dir=multirun/sweep",
            *extra,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _assert_one_parent_two_children(tmp_path: Path, done: subprocess.CompletedProcess):
    import mlflow

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("koderz-humaneval")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(runs) == 3 and len(parents) == 1
    parent = parents[0]
    sweep_dir = tmp_path / "multirun" / "sweep"
    assert (sweep_dir / "mlflow_parent_run_id").read_text().strip() == parent.info.run_id
    children = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    names = sorted(c.info.run_name for c in children)
    assert [n.split(" #")[0] for n in names] == ["reference iterative humaneval", "reference zero_shot humaneval"]
    assert parent.info.run_name.startswith("sweep mode=zero_shot,iterative")  # named by what it sweeps
    for child in children:
        assert child.data.tags["koderz.sweep_id"] == str(sweep_dir)
        assert f"mode={child.data.params['mode.name']}" in child.data.tags["koderz.overrides"]
        assert child.info.status == "FINISHED"
        assert child.data.metrics["pass_rate"] == 1.0
    assert parent.data.tags["koderz.sweep_id"] == str(sweep_dir)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["children"] == 2
    assert client.get_run(parent.info.run_id).data.params["sweep.mode"] == "zero_shot,iterative"  # the swept key
    with global_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db"):
        table = client.load_table(experiment.experiment_id, "sweep_summary.json", run_ids=[parent.info.run_id])
    assert sorted(table["mode"]) == ["iterative", "zero_shot"]
    assert list(table["pass_rate"]) == [1.0, 1.0]
    assert all(0.0 < low < 1.0 for low in table["pass_rate_ci_low"]) and list(table["pass_rate_ci_high"]) == [1.0, 1.0]


def test_basic_launcher_sweep_nests_two_jobs_under_one_parent(tmp_path, tmp_path_factory):
    uri = fresh_store(tmp_path_factory, tmp_path / "mlflow.db")
    _assert_one_parent_two_children(tmp_path, _run_sweep(tmp_path, uri))


@pytest.mark.slow  # the basic launcher's sweep test covers nesting in the default suite
@pytest.mark.skipif(
    importlib.util.find_spec("hydra_plugins.hydra_joblib_launcher") is None,
    reason="hydra-joblib-launcher not installed",
)
def test_joblib_launcher_sweep_nests_two_jobs_under_one_parent(tmp_path, tmp_path_factory):
    uri = fresh_store(tmp_path_factory, tmp_path / "mlflow.db")
    done = _run_sweep(tmp_path, uri, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    _assert_one_parent_two_children(tmp_path, done)


def test_parent_run_id_for_prefers_the_environment_then_the_sweep_file(tmp_path, monkeypatch):
    from koderz.tracking.callback import PARENT_ENV, PARENT_FILE, parent_run_id_for

    monkeypatch.delenv(PARENT_ENV, raising=False)
    assert parent_run_id_for(tmp_path) is None
    (tmp_path / PARENT_FILE).write_text("from-file\n")
    assert parent_run_id_for(tmp_path) == "from-file"
    monkeypatch.setenv(PARENT_ENV, "from-env")
    assert parent_run_id_for(tmp_path) == "from-env"


def test_callback_does_nothing_when_tracking_is_off(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from koderz.tracking.callback import PARENT_ENV, MlflowSweepCallback

    monkeypatch.delenv(PARENT_ENV, raising=False)
    config = OmegaConf.create({"tracking": {"enabled": False}, "hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}})
    callback = MlflowSweepCallback()
    callback.on_multirun_start(config)
    callback.on_multirun_end(config)
    assert not (tmp_path / "sweep").exists() and PARENT_ENV not in os.environ
