"""Slow: a 2x2 sweep through SLURM (``hydra/launcher=slurm``) on the local cluster.

Every job is a task of a SLURM job array started by ``sbatch`` on the one-node cluster of
``scripts/slurm-local.sh``; the jobs log to one ``mlflow server`` and one Cortex server
over HTTP, as on a real cluster. Checks: the jobs in ``sacct``, one MLflow parent with the
four job runs nested once each, four complete run folders, every memory stored once.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from tests.support.env import clean_env
from tests.support.sweep_records import (
    assert_complete_run_folder,
    assert_memories_once,
    assert_one_parent_with_children,
    job_folders,
    run_sweep,
    sacct_jobs,
    submitit_job_ids,
)

pytestmark = pytest.mark.slow

# the local node has 2 CPUs: one each, so two jobs run at a time
LOCAL_CLUSTER = ("hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1")


def test_two_by_two_sweep_on_slurm_shares_one_mlflow_server_and_one_cortex(
    tmp_path: Path, slurm_conf: str, mlflow_server: str, cortex_server: tuple[str, Path]
) -> None:
    cortex_url, cortex_db = cortex_server
    env = clean_env(SLURM_CONF=slurm_conf, MLFLOW_TRACKING_URI=mlflow_server)
    done = run_sweep(
        tmp_path,
        env,
        *LOCAL_CLUSTER,
        "model=reference",
        "dataset=humaneval,mbpp_plus",
        "mode=zero_shot,iterative",
        "end=3",
        "cortex=external",
        f"cortex.url={cortex_url}",
        f"cortex.token_file={cortex_db.with_name('cortex.token')}",
    )
    assert done.returncode == 0, done.stderr[-4000:]
    sweep_dir = tmp_path / "sweep"

    job_ids = submitit_job_ids(sweep_dir)
    assert len(job_ids) == 4 and len({j.split("_")[0] for j in job_ids}) == 1  # one array of four
    jobs = sacct_jobs(env, job_ids)
    assert {job: jobs.get(job, {}).get("state") for job in job_ids} == dict.fromkeys(job_ids, "COMPLETED")

    folders = job_folders(sweep_dir)
    assert len(folders) == 4
    runs = [assert_complete_run_folder(folder, problems=3) for folder in folders]
    assert all(r["summary"]["passed"] == 3 for r in runs)  # the reference model's self-check
    assert sorted((r["summary"]["dataset"], r["summary"]["mode"]) for r in runs) == [
        ("humaneval", "iterative"),
        ("humaneval", "zero_shot"),
        ("mbpp_plus", "iterative"),
        ("mbpp_plus", "zero_shot"),
    ]

    assert_one_parent_with_children(mlflow.MlflowClient(mlflow_server), sweep_dir, folders)
    assert_memories_once(cortex_db, runs)
