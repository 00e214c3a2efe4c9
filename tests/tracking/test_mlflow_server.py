"""Slow: a real ``mlflow server`` on 127.0.0.1 serving a sweep's runs (REST API, UI page)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from koderz.config import TrackingConfig
from koderz.records import RunFolder
from koderz.tracking.logger import log_run_folder
from koderz.tracking.mlflow_tracker import finish_sweep_run, start_sweep_run
from tests.support.mlflow_runs import TASKS, fresh_store, global_tracking_uri, real_run_folder

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def sweep_store(tmp_path_factory):
    """A store holding one sweep: a parent run and two nested job runs (folders of real runs)."""
    tmp = tmp_path_factory.mktemp("server")
    uri = fresh_store(tmp_path_factory, tmp / "mlflow.db")
    tracking = TrackingConfig(enabled=True, uri=uri, artifact_location=str(tmp / "artifacts"))
    parent = start_sweep_run(tracking, "humaneval", "sweep-test", {"koderz.sweep_id": "sweep-test"})
    children = [
        log_run_folder(real_run_folder(tmp / name / "run"), tracking, parent_run_id=parent) for name in ("a", "b")
    ]
    assert finish_sweep_run(tracking, parent) == 2
    return tmp, uri, parent, children


@pytest.fixture(scope="module")
def server(sweep_store):
    """``mlflow server`` on a free 127.0.0.1 port; stopped (whole process group) after."""
    tmp, uri, _, _ = sweep_store
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--backend-store-uri",
            uri,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--artifacts-destination",
            str(tmp / "served"),
        ],
        cwd=tmp,
        env=env,
        stdout=(tmp / "server.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("mlflow server did not start:\n" + (tmp / "server.log").read_text()[-2000:])
                time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_rest_api_serves_one_parent_and_two_nested_runs(server, sweep_store):
    _, _, parent, children = sweep_store
    experiment = _get(f"{server}/api/2.0/mlflow/experiments/get-by-name?experiment_name=koderz-humaneval")["experiment"]
    runs = _post(f"{server}/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
    assert len(runs) == 3
    nested = [r for r in runs if {"key": "mlflow.parentRunId", "value": parent} in r["data"]["tags"]]
    assert sorted(r["info"]["run_id"] for r in nested) == sorted(children)
    run = _get(f"{server}/api/2.0/mlflow/runs/get?run_id={children[0]}")["run"]
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert metrics["pass_rate"] == 0.75 and metrics["cost_usd"] == 0.0
    history = _get(f"{server}/api/2.0/mlflow/metrics/get-history?run_id={children[0]}&metric_key=cumulative_pass_rate")[
        "metrics"
    ]
    assert sorted(m["step"] for m in history) == [1, 2, 3, 4]


def test_a_folder_logs_to_the_server_over_http(server, tmp_path):
    import mlflow

    folder = real_run_folder(tmp_path / "run")
    run_id = log_run_folder(folder, TrackingConfig(enabled=True, uri=server, experiment="remote"))
    assert run_id is not None
    client = mlflow.MlflowClient(server)
    run = client.get_run(run_id)
    assert run.info.run_name.startswith("replay iterative humaneval #")
    assert RunFolder(folder).read_results().summary.run_id.endswith(run.info.run_name[-6:])
    assert "results.json" in {a.path for a in client.list_artifacts(run_id)}
    with global_tracking_uri(server):
        traces = mlflow.search_traces(locations=[run.info.experiment_id], run_id=run_id, return_type="list")
    assert len(traces) == len(TASKS)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_screenshot_of_the_compare_page_of_the_sweeps_two_runs(server, sweep_store, tmp_path):
    _, _, _, children = sweep_store
    experiment = _get(f"{server}/api/2.0/mlflow/experiments/get-by-name?experiment_name=koderz-humaneval")[
        "experiment"
    ]["experiment_id"]
    url = f"{server}/#/compare-runs?runs={json.dumps(children)}&experiments={json.dumps([experiment])}"
    shot = REPO / "outputs" / "mlflow_compare_runs.png"
    shot.parent.mkdir(exist_ok=True)
    shot.unlink(missing_ok=True)
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=15000",
            f"--screenshot={shot}",
            "--window-size=1400,900",
            url,
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.read_bytes()[:4] == b"\x89PNG"
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
