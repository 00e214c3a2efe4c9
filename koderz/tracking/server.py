"""The tracking server: a long-lived process with mlflow imported that forks each run's worker.

Importing mlflow takes seconds of CPU, and a run that logs to MLflow used to pay them every
time, in its own worker (``koderz.tracking.follow``). The first run that tracks starts this
server (``python -m koderz.tracking serve``) in a session of its own; it imports mlflow, forks
that run's worker, and then waits on a Unix socket for the next runs, whose workers it forks
with mlflow already imported. It ends after ``IDLE_SECONDS`` without a request, on SIGTERM, or
on ``python -m koderz.tracking stop-server``.

The socket lives in ``$KODERZ_TRACKING_SERVER_DIR`` (default: koderz's cache folder) under a
name keyed by the Python interpreter, koderz's source files, mlflow's installation and the
``MLFLOW_*`` environment: a run never gets a worker running other code than its own. Each
worker adopts its run's working directory and environment. ``KODERZ_TRACKING_SERVER=off``
gives every run a fresh worker instead.

Protocol (``SOCK_SEQPACKET``): a run sends a ``WorkerRequest`` (``W <json>``) with the read end
of its wake pipe; the server forks the worker and answers ``P <pid>`` with a pidfd of it (so the run can
signal it without racing a reused pid); the worker sends ``X <exit code>`` as its last act.
``S`` stops the server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

IDLE_SECONDS = 600.0
REAP_SECONDS = 1.0
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes
MESSAGE_LIMIT = 1 << 20  # a request: the run's cwd and environment as JSON
PACKAGE = Path(__file__).resolve().parents[1]  # koderz's sources


@dataclass(frozen=True)
class WorkerRequest:
    """What a run asks the server for: a worker in its working directory and environment."""

    cwd: str
    env: dict[str, str]

    def message(self) -> bytes:
        return b"W " + json.dumps(dataclasses.asdict(self)).encode()

    @classmethod
    def parse(cls, message: bytes) -> WorkerRequest:
        """The request in a ``W`` message; ValueError when it is not one."""
        try:
            fields = json.loads(message.removeprefix(b"W "))
            request = cls(cwd=fields["cwd"], env=fields["env"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a worker request: {exc}") from exc
        if not isinstance(request.cwd, str) or not isinstance(request.env, dict):
            raise ValueError("not a worker request")
        return request


def enabled() -> bool:
    return os.environ.get("KODERZ_TRACKING_SERVER", "on").lower() not in ("off", "0", "false", "no")


def server_dir() -> Path:
    explicit = os.environ.get("KODERZ_TRACKING_SERVER_DIR")
    if explicit:
        return Path(explicit)
    from koderz.datasets.groundtruth import cache_dir

    return cache_dir() / "tracking-server"


def socket_path() -> Path | None:
    """This code's server socket; None when the server is off or the path is too long for a socket."""
    if not enabled() or not hasattr(os, "pidfd_open"):
        return None
    folder = server_dir()
    if not _private(folder):  # whoever listens there would get the run's environment (its keys)
        log.warning("tracking server off: %s is writable by other users or not ours", folder)
        return None
    path = folder / f"{code_key()}.sock"
    return path if len(str(path)) <= MAX_SOCKET_PATH else None


def _private(folder: Path) -> bool:
    """The folder is this user's alone (or not made yet: the run makes it, mode 0700)."""
    try:
        stat = folder.stat()
    except FileNotFoundError:
        return True
    return stat.st_uid == os.geteuid() and not stat.st_mode & 0o022


def code_key(package: Path = PACKAGE) -> str:
    """A hash of what a worker's behaviour depends on besides its run's settings: the
    interpreter, koderz's source files, mlflow's installation and the ``MLFLOW_*`` variables."""
    digest = hashlib.sha256(sys.executable.encode())
    for path in sorted(package.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    spec = importlib.util.find_spec("mlflow")
    if spec is not None and spec.origin:
        stat = Path(spec.origin).stat()
        digest.update(f"{spec.origin}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    settings = sorted((k, v) for k, v in os.environ.items() if k.startswith("MLFLOW_") or k == "PYTHONPATH")
    digest.update(json.dumps(settings).encode())
    return digest.hexdigest()[:16]


def stop_servers() -> int:
    """Ask every server in ``server_dir()`` to stop; returns how many were asked."""
    asked = 0
    for path in sorted(server_dir().glob("*.sock")):
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:
            conn.settimeout(5)
            conn.connect(str(path))
            conn.send(b"S")
            asked += 1
    return asked


def serve(path: Path, first_pipe: int | None, first_conn: int | None) -> int:
    """The server's life: mlflow imported, the worker of the run that started it (if any)
    forked, then requests until idle. Returns the exit code."""
    from koderz.tracking.follow import warm_up

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    warm_up()
    if first_pipe is not None and first_conn is not None:
        _fork_worker(first_pipe, socket.socket(fileno=first_conn), None, [])
    try:  # the folder is made by the run that started us; gone (removed meanwhile): we are done
        lock = open(path.with_suffix(".lock"), "w")  # noqa: SIM115 - held for the server's life
    except OSError:
        return 0
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # another server of this code holds the socket
        lock.close()
        return 0
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # left by a server that was killed
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    bound = None
    try:
        listener.bind(str(path))
        bound = path.stat().st_ino
        listener.listen(16)
        _warm_up(path.with_suffix(".store.db"))  # requests wait in the backlog meanwhile
        _serve_requests(listener, path, bound, [listener.fileno(), lock.fileno()])
    finally:
        with contextlib.suppress(OSError):
            if path.stat().st_ino == bound:  # still ours
                path.unlink()
        listener.close()
        lock.close()
    return 0


def _warm_up(template: Path) -> None:
    """For the next workers: matplotlib imported and its fonts loaded, an empty store made by
    MLflow to copy (``store_template``); in CPU time nothing else wants, and only where the
    server can return to normal scheduling afterwards (it forks the workers)."""
    from koderz.tracking import store_template
    from koderz.tracking.follow import may_raise_priority, run_in_background, run_in_foreground

    if template.exists():
        store_template.use(template)
    if not may_raise_priority():
        return
    run_in_background()
    try:
        from koderz.tracking import figures

        figures.warm_up()
        if not template.exists():
            store_template.make(template)
            store_template.use(template)
    except Exception as exc:  # noqa: BLE001 - the workers then do it themselves
        log.warning("warm-up failed: %s", exc)
    finally:
        run_in_foreground()


def _serve_requests(listener: socket.socket, path: Path, bound: int, own_fds: list[int]) -> None:
    """Fork a worker per request until idle for ``IDLE_SECONDS``, asked to stop, or the socket
    file ``path`` (inode ``bound``) is gone or replaced (its folder was removed)."""
    last_request = time.monotonic()
    while time.monotonic() - last_request < IDLE_SECONDS:
        _reap()
        try:
            if path.stat().st_ino != bound:
                return
        except FileNotFoundError:
            return
        readable, _, _ = select.select([listener], [], [], REAP_SECONDS)
        if not readable:
            continue
        conn, _ = listener.accept()
        last_request = time.monotonic()
        try:
            message, fds, _, _ = socket.recv_fds(conn, MESSAGE_LIMIT, 1)
        except OSError:
            conn.close()
            continue
        if message == b"S":
            conn.close()
            return
        if message.startswith(b"W ") and len(fds) == 1:
            try:
                request = WorkerRequest.parse(message)
            except ValueError as exc:
                log.warning("ignored a request: %s", exc)
            else:
                _fork_worker(fds[0], conn, request, own_fds)
                continue
        for fd in fds:
            os.close(fd)
        conn.close()


def _fork_worker(pipe: int, conn: socket.socket, request: WorkerRequest | None, own_fds: list[int]) -> None:
    """Fork a worker reading its run's wake pipe ``pipe``; tell the run its pid (and a pidfd)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for fd in own_fds:
                os.close(fd)
            code = _worker(pipe, request)
        finally:
            with contextlib.suppress(OSError):
                conn.send(b"X %d" % code)
            os._exit(code)
    try:
        pidfd = os.pidfd_open(pid)
        try:
            socket.send_fds(conn, [b"P %d" % pid], [pidfd])
        finally:
            os.close(pidfd)
    except OSError as exc:  # the run went away; its worker finds end of file on its pipe
        log.warning("could not tell a run its worker's pid: %s", exc)
    finally:
        os.close(pipe)
        conn.close()


def _worker(pipe: int, request: WorkerRequest | None) -> int:
    """A forked worker: its run's directory and environment (the server's own when the run
    started the server), the wake pipe on stdin, then the same life as a fresh worker's."""
    from koderz.tracking.follow import Signals, work

    os.setsid()
    if request is not None:
        os.chdir(request.cwd)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in request.env.items()})
    os.dup2(pipe, 0)
    os.close(pipe)
    return work(Signals())


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
