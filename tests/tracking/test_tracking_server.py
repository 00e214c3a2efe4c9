"""The tracking server: runs' workers forked from one long-lived process with mlflow imported.

Real processes throughout; each test uses a server folder of its own and stops (or kills) only
the servers its requests started.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from koderz.tracking import forked_worker, server
from koderz.tracking.forked_worker import ForkedWorker
from koderz.tracking.live import LiveTracking

DEADLINE = 120.0


@pytest.fixture
def server_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = Path(f"/tmp/kz-ts-{os.getpid()}-{time.monotonic_ns()}")  # short: a socket path
    monkeypatch.setenv("KODERZ_TRACKING_SERVER_DIR", str(folder))
    yield folder
    server.stop_servers()
    forked_worker.stop_started_servers()
    shutil.rmtree(folder, ignore_errors=True)


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def pid_of(worker: ForkedWorker) -> int:
    deadline = time.monotonic() + DEADLINE
    while worker.pid is None:
        assert worker.poll() is None, "the worker ended before the server named it"
        assert time.monotonic() < deadline, "the server never named the worker"
        time.sleep(0.05)
    return worker.pid


def refused(path: Path) -> bool:
    """Nothing listens on ``path`` (only a socket file, or not even that, is left)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as probe:
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return True
    return False


def end(worker: ForkedWorker) -> int:
    """Close the worker's stdin (no settings: a run that needs no tracking); its exit code."""
    assert worker.stdin is not None
    worker.stdin.close()
    return worker.wait(timeout=DEADLINE)


def test_runs_get_workers_forked_by_one_server_in_their_own_directory(
    server_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = forked_worker.request(dict(os.environ))
    assert first is not None
    pid_of(first)
    deadline = time.monotonic() + DEADLINE
    while not list(server_dir.glob("*.sock")):  # the server listens once it has forked the first worker
        assert time.monotonic() < deadline, "the server never listened"
        time.sleep(0.05)
    second = forked_worker.request(dict(os.environ))
    assert second is not None
    servers = {parent_of(pid_of(worker)) for worker in (first, second)}
    assert len(servers) == 1 and os.getpid() not in servers  # one server, not this process
    assert os.readlink(f"/proc/{pid_of(second)}/cwd") == str(tmp_path)
    assert (end(first), end(second)) == (0, 0)
    (socket_file,) = server_dir.glob("*.sock")
    assert socket_file.name == f"{server.code_key()}.sock"
    assert server.stop_servers() == 1
    deadline = time.monotonic() + DEADLINE
    while socket_file.exists():  # the server removes its socket as it ends
        assert time.monotonic() < deadline, "the server did not stop"
        time.sleep(0.05)


def test_a_killed_server_is_replaced_and_its_worker_signalled_by_pidfd(server_dir: Path) -> None:
    first = forked_worker.request(dict(os.environ))
    assert first is not None
    started = parent_of(pid_of(first))
    os.kill(started, signal.SIGKILL)  # a server this test's request started; its socket is left behind
    deadline = time.monotonic() + DEADLINE
    while not refused(server_dir / f"{server.code_key()}.sock"):  # once all its threads are gone
        assert time.monotonic() < deadline, "the server did not die"
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=DEADLINE) == forked_worker.LOST  # killed: no exit code reported
    second = forked_worker.request(dict(os.environ))
    assert second is not None
    assert parent_of(pid_of(second)) != started
    assert end(second) == 0


def test_live_tracking_uses_a_fresh_worker_when_the_server_is_off(
    server_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KODERZ_TRACKING_SERVER", "off")
    assert forked_worker.request(dict(os.environ)) is None
    worker = LiveTracking.spawn()
    assert isinstance(worker, subprocess.Popen)
    LiveTracking.cancel(worker)
    assert worker.returncode == 0 and not server_dir.exists()


def test_the_key_changes_with_the_code(tmp_path: Path) -> None:
    package = tmp_path / "koderz"
    shutil.copytree(server.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = server.code_key(package)
    assert server.code_key(package) == before
    module = package / "tracking" / "follow.py"
    module.write_text(module.read_text() + "\n# changed\n")
    assert server.code_key(package) != before


def test_a_fresh_store_is_a_copy_of_the_empty_store_mlflow_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The template is made by MLflow (migrated, without its Default experiment); a store copied
    from it opens as MLflow's own (schema version checked) with Default in the new store's folder."""
    from koderz.config import TrackingConfig
    from koderz.tracking import mlflow_tracker, store_template

    monkeypatch.setattr(store_template, "TEMPLATE", [])
    template = tmp_path / "empty.db"
    store_template.make(template)
    store_template.use(template)
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    made = template.read_bytes()
    db = project / "outputs" / "mlflow.db"
    caplog.set_level(logging.INFO, logger="koderz.tracking.mlflow_tracker")
    with mlflow_tracker.store(TrackingConfig(uri=f"sqlite:///{db}")) as (_, client):
        assert f"store {db} created from the empty store" in caplog.text
        (default,) = client.search_experiments()
        assert (default.name, default.artifact_location) == ("Default", str(project / "mlruns" / "0"))
        client.create_experiment("koderz-humaneval")
    assert template.read_bytes() == made  # copied, never written
    import sqlite3

    with sqlite3.connect(template) as conn:
        assert conn.execute("SELECT count(*) FROM experiments").fetchone() == (0,)


def test_no_server_in_a_folder_other_users_may_write(server_dir: Path) -> None:
    """A socket there could be anyone's, and a run sends its worker's environment (API keys)."""
    server_dir.mkdir(mode=0o700)
    assert server.socket_path() is not None
    server_dir.chmod(0o777)
    assert server.socket_path() is None and forked_worker.request(dict(os.environ)) is None


def test_killing_a_worker_the_server_never_named_gives_it_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that never answers (here: a socket nobody reads) cannot make the run hang."""
    monkeypatch.setattr(forked_worker, "START_SECONDS", 0.1)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    read_end, write_end = os.pipe()
    with theirs:
        worker = ForkedWorker(ours, os.fdopen(write_end, "wb"))
        assert worker.poll() is None
        with pytest.raises(subprocess.TimeoutExpired):
            worker.wait(timeout=0.1)
        worker.kill()
        assert worker.wait(timeout=DEADLINE) == forked_worker.LOST
    os.close(read_end)
    assert worker.stdin is not None
    worker.stdin.close()


def test_a_forked_worker_stopped_by_sigterm_marks_its_run_killed(server_dir: Path, tmp_path: Path) -> None:
    """What Ctrl-C during the flush does to a forked worker: SIGTERM through the pidfd; it marks
    the MLflow run KILLED with ``koderz.tracking=incomplete`` and exits ``STOPPED``."""
    import mlflow

    from koderz.config import TrackingConfig
    from koderz.records import RunFolder
    from koderz.tracking.follow import STOPPED, Settings
    from tests.tracking.support import real_run_folder

    folder = real_run_folder(tmp_path / "run")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking = TrackingConfig(enabled=True, uri=uri, artifact_location=str(tmp_path / "artifacts"))
    worker = forked_worker.request(dict(os.environ))
    assert worker is not None and worker.stdin is not None
    worker.stdin.write(Settings(str(folder), dataclasses.asdict(tracking)).line())
    worker.stdin.flush()  # the pipe stays open: the run is still running
    deadline = time.monotonic() + DEADLINE
    while (progress := RunFolder(folder).read_tracking()) is None:  # its MLflow run is open
        assert worker.poll() is None, "the worker ended"
        assert time.monotonic() < deadline, "the worker never opened its MLflow run"
        time.sleep(0.05)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=DEADLINE) == STOPPED
    run = mlflow.MlflowClient(uri).get_run(progress.mlflow_run_id)
    assert run.info.status == "KILLED" and run.data.tags["koderz.tracking"] == "incomplete"
    worker.stdin.close()


def test_a_worker_request_round_trips_and_anything_else_is_refused() -> None:
    request = server.WorkerRequest("/tmp", {"A": "1"})
    assert server.WorkerRequest.parse(request.message()) == request
    for bad in (b"W {}", b"W [1]", b"W not json", b'W {"cwd": 1, "env": {}}', b'W {"cwd": "/", "env": []}'):
        with pytest.raises(ValueError):
            server.WorkerRequest.parse(bad)
