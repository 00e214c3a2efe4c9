"""``scripts/slurm-local.sh``: bad input and a cluster that is not running (no root, no SLURM needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.cluster_servers import SLURM_SCRIPT

DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")


def _script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KODERZ_SLURM_DIR=str(tmp_path / "slurm"))
    return subprocess.run(
        ["bash", str(SLURM_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_an_unknown_command_is_one_line_naming_it_and_exit_1(tmp_path):
    done = _script(tmp_path, "restart-everything")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"slurm-local: usage: {SLURM_SCRIPT} start|stop|status|env (got 'restart-everything')"
    ]


def test_status_of_a_cluster_never_started_names_each_daemon_stopped(tmp_path):
    done = _script(tmp_path, "status")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [f"{name} stopped" for name in DAEMONS]


def test_stop_leaves_alone_a_process_whose_pid_is_in_a_pid_file_but_is_no_daemon(tmp_path):
    run = tmp_path / "slurm" / "run"
    run.mkdir(parents=True)
    bystander = subprocess.Popen(["sleep", "120"])
    try:
        for name in DAEMONS:  # stale pid files that now name an unrelated process
            (run / f"{name}.pid").write_text(f"{bystander.pid}\n")
        done = _script(tmp_path, "stop")
        assert done.returncode == 0, done.stderr
        assert bystander.poll() is None
        assert not list(run.glob("*.pid"))  # stale pid files are cleared
    finally:
        bystander.kill()
        bystander.wait(timeout=30)


def test_env_names_the_config_under_the_cluster_folder(tmp_path):
    done = _script(tmp_path, "env")
    assert done.stdout.strip() == f"export SLURM_CONF={tmp_path / 'slurm' / 'etc' / 'slurm.conf'}"
