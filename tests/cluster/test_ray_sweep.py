"""Slow: a sweep through ``hydra/launcher=ray`` on a local Ray head bound to 127.0.0.1.

Usage statistics are off (``RAY_USAGE_STATS_ENABLED=0``) and
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes every Ray process use the loopback address
(otherwise the head's agents bind and connect on the host's own IP even with
``--node-ip-address=127.0.0.1``). Skips without ``pip install 'koderz[ray]'``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import yaml

from tests.support.cluster_servers import BIN, free_port, port_open, wait_until
from tests.support.env import clean_env
from tests.support.sweep_records import (
    assert_complete_run_folder,
    assert_one_parent_with_children,
    job_folders,
    run_sweep,
)

pytestmark = pytest.mark.slow

LOOPBACK_ONLY = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies waiting to be reaped do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
            return True
    return False


@pytest.fixture
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``ray start --head --block`` on 127.0.0.1 in a session of its own; yields its address."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="pip install 'koderz[ray]'")
    temp = tmp_path_factory.mktemp("ray")  # short: Ray's socket paths live under it
    port = free_port()
    log = temp / "head.log"
    cmd = [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}"]
    cmd += ["--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp / 't'}"]
    with log.open("w") as out:  # workers run in the head's directory: keep it inside the test's tmp
        proc = subprocess.Popen(
            cmd, cwd=temp, env=clean_env(**LOOPBACK_ONLY), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until("ray head", lambda: port_open(port) and "Ray runtime started" in log.read_text(), proc, log, 180)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the group of `ray start`: raylet, GCS, agents, workers
        deadline = time.monotonic() + 60
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        shutil.rmtree(temp / "t", ignore_errors=True)


def test_ray_sweep_runs_each_job_on_the_local_head_and_nests_them_under_one_parent(
    tmp_path: Path, ray_head: str
) -> None:
    # Ray workers have the head's environment and directory, not the sweep's: the store is
    # named in the config (which travels with each job) by an absolute path
    store = tmp_path / "mlflow.db"
    done = run_sweep(
        tmp_path,
        clean_env(**LOOPBACK_ONLY),
        f"tracking.uri=sqlite:///{store}",
        "hydra/launcher=ray",
        f"hydra.launcher.ray.init.address={ray_head}",
        "+hydra.launcher.ray.init.object_store_memory=null",  # the launcher's default is refused by a running head
        "model=reference",
        "mode=zero_shot,iterative",
        "end=3",
        "cortex=off",
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    folders = job_folders(tmp_path / "sweep")
    assert len(folders) == 2
    for folder in folders:
        assert assert_complete_run_folder(folder, problems=3)["summary"]["passed"] == 3
        job = yaml.safe_load((folder / ".hydra" / "hydra.yaml").read_text())["hydra"]["job"]
        assert job["id"] == f"job_id_for_{job['num']}"  # set by the Ray launcher's remote job
    assert_one_parent_with_children(mlflow.MlflowClient(f"sqlite:///{store}"), tmp_path / "sweep", folders)
