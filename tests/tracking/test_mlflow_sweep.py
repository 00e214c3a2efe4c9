"""Hydra multirun with the MLflow sweep callback: one parent run, every job nested under it.

The app is a STAND-IN for koderz's Hydra app: it writes a fake run folder per job and
logs it the way the runner does. Hydra only warns on callback errors and still exits
0, so these tests count the runs in the store.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAKES = Path(__file__).with_name("test_mlflow_tracker.py")
_spec = importlib.util.spec_from_file_location("mlflow_fakes", FAKES)
fakes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fakes)

APP = f'''
import importlib.util
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

spec = importlib.util.spec_from_file_location("mlflow_fakes", {str(FAKES)!r})
fakes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fakes)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg):
    from koderz.tracking.callback import hydra_job_tags, parent_run_id_for
    from koderz.tracking.mlflow_tracker import log_run_folder

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    fakes.write_fake_run_folder(run_dir, model=cfg.model.name, dataset=cfg.dataset.name,
                                tracking=OmegaConf.to_container(cfg.tracking, resolve=True))
    run_id = log_run_folder(run_dir, cfg.tracking, tags=hydra_job_tags(),
                            parent_run_id=parent_run_id_for(hc.sweep.dir))
    assert run_id is not None


if __name__ == "__main__":
    main()
'''

CONFIG = """
defaults:
  - tracking: mlflow
  - _self_
model: {name: fake}
dataset: {name: toy}
max_iterations: 3
hydra:
  callbacks:
    mlflow_sweep:
      _target_: koderz.tracking.callback.MlflowSweepCallback
  sweep:
    dir: multirun/sweep
"""


def _run_sweep(tmp_path: Path, uri: str, *extra: str) -> subprocess.CompletedProcess:
    (tmp_path / "conf" / "tracking").mkdir(parents=True)
    (tmp_path / "conf" / "config.yaml").write_text(CONFIG)
    for name in ("mlflow.yaml", "off.yaml"):
        (tmp_path / "conf" / "tracking" / name).write_text(
            (REPO / "conf" / "tracking" / name).read_text())
    (tmp_path / "app.py").write_text(APP)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "KODERZ_"))}
    env |= {"PYTHONPATH": str(REPO),
            "MLFLOW_TRACKING_URI": uri}
    return subprocess.run(
        [sys.executable, "app.py", "-m", "model.name=alpha,beta", *extra],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)


def _assert_one_parent_two_children(tmp_path: Path, done: subprocess.CompletedProcess):
    import mlflow

    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("koderz-toy")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(runs) == 3 and len(parents) == 1
    parent = parents[0]
    sweep_dir = tmp_path / "multirun" / "sweep"
    assert (sweep_dir / "mlflow_parent_run_id").read_text().strip() == parent.info.run_id
    children = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(c.info.run_name for c in children) == [
        "alpha-iterative-toy", "beta-iterative-toy"]
    for child in children:
        assert child.data.tags["koderz.sweep_id"] == str(sweep_dir)
        assert child.data.tags["koderz.overrides"] == f"model.name={child.data.tags['koderz.model']}"
        assert child.info.status == "FINISHED"
    assert parent.data.tags["koderz.sweep_id"] == str(sweep_dir)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["children"] == 2
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    try:
        table = client.load_table(experiment.experiment_id, "sweep_summary.json",
                                  run_ids=[parent.info.run_id])
    finally:
        mlflow.set_tracking_uri(None)
    assert sorted(table["model"]) == ["alpha", "beta"]
    assert list(table["pass_rate"]) == [0.75, 0.75]


def test_basic_launcher_sweep_nests_two_jobs_under_one_parent(tmp_path, tmp_path_factory):
    uri = fakes.fresh_store(tmp_path_factory, tmp_path / "mlflow.db")
    _assert_one_parent_two_children(tmp_path, _run_sweep(tmp_path, uri))


@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_joblib_launcher") is None,
                    reason="hydra-joblib-launcher not installed")
def test_joblib_launcher_sweep_nests_two_jobs_under_one_parent(tmp_path, tmp_path_factory):
    uri = fakes.fresh_store(tmp_path_factory, tmp_path / "mlflow.db")
    done = _run_sweep(tmp_path, uri, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    _assert_one_parent_two_children(tmp_path, done)


def test_parent_run_id_for_prefers_the_environment_then_the_sweep_file(tmp_path,
                                                                       monkeypatch):
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
    config = OmegaConf.create({"tracking": {"enabled": False},
                               "hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}})
    callback = MlflowSweepCallback()
    callback.on_multirun_start(config)
    callback.on_multirun_end(config)
    assert not (tmp_path / "sweep").exists() and PARENT_ENV not in os.environ
