"""Scale-out fixtures: the local SLURM cluster, one MLflow server and one Cortex server on 127.0.0.1.

The SLURM cluster is ``scripts/slurm-local.sh start`` (``.ci/run`` starts it for the slow
suite as root). Without it the SLURM tests skip, unless ``KODERZ_REQUIRE_SLURM=1`` (CI),
where they fail. The servers are started per test and stopped after, by the pid of the
process group the fixture created.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster_servers import BIN, SLURM_SCRIPT, free_port, serving
from tests.support.env import clean_env

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """``mlflow server`` on a free 127.0.0.1 port with its own SQLite store; yields its URL."""
    port = free_port()
    home = tmp_path / "mlflow-server"
    home.mkdir()
    cmd = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{home / 'mlflow.db'}",
        "--artifacts-destination",
        str(home / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with serving("mlflow server", cmd, port, home, clean_env()):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def cortex_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``python -m koderz.cortex serve --http`` on a free port; yields (its MCP URL, its db file)."""
    port = free_port()
    home = tmp_path / "cortex-server"
    home.mkdir()
    db = home / "cortex.db"
    cmd = [sys.executable, "-m", "koderz.cortex", "serve", "--db", str(db), "--http", f"127.0.0.1:{port}"]
    cmd += ["--token-file", str(home / "cortex.token")]  # clients: cortex.token_file=<db folder>/cortex.token
    with serving("cortex server", cmd, port, home, clean_env(PYTHONPATH=str(REPO))):
        yield f"http://127.0.0.1:{port}/mcp", db


@pytest.fixture(scope="session")
def slurm_conf() -> str:
    """SLURM_CONF of the running local cluster (``scripts/slurm-local.sh start``)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install 'koderz[slurm]'")
    status = subprocess.run(
        ["bash", str(SLURM_SCRIPT), "status"], capture_output=True, text=True, timeout=60, check=False
    )
    if status.returncode != 0 or " idle " not in status.stdout:
        reason = f"the local SLURM cluster is not up (scripts/slurm-local.sh start as root):\n{status.stdout}"
        if os.environ.get("KODERZ_REQUIRE_SLURM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    env = subprocess.run(["bash", str(SLURM_SCRIPT), "env"], capture_output=True, text=True, check=True, timeout=60)
    return env.stdout.strip().removeprefix("export SLURM_CONF=")
