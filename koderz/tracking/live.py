"""The run's side of live tracking (the worker and its pipe protocol: ``koderz.tracking.follow``).

``LiveTracking.start`` starts the worker once the run's config is checked; as a ``RunObserver`` it
writes one ``PROBLEM_DONE`` frame per finished problem (never blocking, and whole or not at all: a
full pipe means the worker is busy and finds the problem on its next sync); ``finish`` closes the pipe and waits for the final flush with
a progress line. Ctrl-C there stops the worker and prints the command that finishes the logging.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, TextIO

from koderz.config import TrackingConfig
from koderz.framing import Kind, Message, frame
from koderz.records import ProblemRecord, RunFolder
from koderz.tracking.follow import STOPPED, Settings
from koderz.tracking.mlflow_tracker import absolute_uri, remedy, tracking_uri

log = logging.getLogger(__name__)

STOP_SECONDS = 30.0  # for the worker to mark the MLflow run after SIGTERM
DISCARD_SECONDS = 30.0
TICK = 0.1
REPORT_SECONDS = 5.0  # progress lines when stderr is not a terminal


class LiveTracking:
    """One worker process logging one run folder while the run runs."""

    def __init__(self, folder: Path, tracking: TrackingConfig, process: subprocess.Popen[bytes]) -> None:
        self.folder = RunFolder(folder)
        self.tracking = tracking
        self.process = process
        self._pipe: IO[bytes] | None = process.stdin
        self._woken = False  # a problem finished: the worker may have opened the store

    @classmethod
    def start(
        cls,
        folder: Path,
        tracking: TrackingConfig,
        *,
        parent_run_id: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> LiveTracking:
        """Start the worker of ``folder``: it imports mlflow while the run runs, then logs it."""
        folder = folder.resolve()
        settings = dataclasses.replace(tracking, uri=absolute_uri(tracking_uri(tracking)))
        first = Settings(str(folder), dataclasses.asdict(settings), parent_run_id, tags or {}).frame()
        worker = subprocess.Popen(
            [sys.executable, "-m", "koderz.tracking", "follow"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # the terminal's Ctrl-C is the run's; the worker ends at end of file
            env=os.environ | {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},  # no bars in tracking.log
        )
        assert worker.stdin is not None
        try:
            worker.stdin.write(first)
            worker.stdin.flush()
        except BrokenPipeError:  # it died at once: finish() reports its exit code
            pass
        os.set_blocking(worker.stdin.fileno(), False)
        return cls(folder, settings, worker)

    @property
    def uri(self) -> str:
        return str(self.tracking.uri)

    def problem_done(self, record: ProblemRecord) -> None:
        self._woken = True
        self._send(Kind.PROBLEM_DONE)

    def _send(self, kind: Kind) -> None:
        if self._pipe is None:
            return
        try:  # a frame this short is written whole or not at all (PIPE_BUF)
            os.write(self._pipe.fileno(), frame(Message(kind)))
        except BlockingIOError:  # the worker is busy; it reads every new record on its next sync
            pass
        except (BrokenPipeError, ValueError):  # the worker ended; finish() says why
            self._pipe = None

    def _close_pipe(self) -> None:
        if self._pipe is not None:
            with contextlib.suppress(BrokenPipeError, BlockingIOError):
                self._pipe.close()
            self._pipe = None

    def discard(self) -> None:
        """The run never started (its folder is being removed). A worker never woken has not
        touched the store: it is killed at once; otherwise it deletes its MLflow run."""
        if self._woken:
            self._send(Kind.DISCARD)
        self._close_pipe()
        if not self._woken:
            self.process.kill()
        try:
            self.process.wait(timeout=DISCARD_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def finish(self, stream: TextIO | None = None) -> bool:
        """Let the worker log what is left, showing progress; False when Ctrl-C stopped it first."""
        stream = stream or sys.stderr
        self._close_pipe()
        line = _ProgressLine(stream)
        total = len(self.folder.records())
        try:
            while self.process.poll() is None:
                line.show(self._logged(), total)
                time.sleep(TICK)
        except KeyboardInterrupt:
            line.done()
            return self._stop()
        line.done()
        self._report(self.process.returncode)
        return True

    def _logged(self) -> int:
        """Problems the MLflow run holds."""
        try:
            saved = self.folder.read_tracking()
        except Exception:  # noqa: BLE001 - a file being replaced; the next tick reads it
            return 0
        return len(saved.logged) if saved else 0

    def _stop(self) -> bool:
        """Ctrl-C during the flush: the worker marks the MLflow run and ends; one line says how to
        finish. True when the worker had finished anyway; a second Ctrl-C ends the worker at once."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            self.process.kill()
            self.process.wait()
        saved = self.folder.read_tracking()
        if self.process.returncode == 0 and saved is not None and saved.finished:
            self._report(0)
            return True
        if saved is None:
            sys.stderr.write(
                f"koderz: MLflow logging stopped before its run was made; log it with: {self.command()} --uri {self.uri}\n"
            )
            return False
        marked = "run marked KILLED, koderz.tracking=incomplete" if saved.stopped else "its run is left RUNNING"
        sys.stderr.write(
            f"koderz: MLflow logging stopped at {len(saved.logged)} of {len(self.folder.records())} problems "
            f"({marked}); finish it with: {self.command()}\n"
        )
        return False

    def command(self) -> str:
        return f"python -m koderz.tracking log {self.folder.path}"

    def _report(self, code: int | None) -> None:
        if code == 0:
            saved = self.folder.read_tracking()
            if saved is not None:
                log.info("MLflow run %s (%s)", saved.mlflow_run_id, self.uri)
            return
        reason = "stopped" if code == STOPPED else _last_error(self.folder.tracking_log_path) or f"exit code {code}"
        log.warning("MLflow tracking to %s failed: %s; %s", self.uri, reason, remedy(self.folder.path, self.uri))


class _ProgressLine:
    """``MLflow: logged n/m problems`` updated in place on a terminal, every few seconds otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.shown = False
        self.last = 0.0

    def show(self, logged: int, total: int) -> None:
        now = time.monotonic()
        if not self.live and now - self.last < REPORT_SECONDS:
            return
        self.last = now
        text = f"MLflow: logging the rest: {logged}/{total} problems logged"
        self.stream.write(("\r\033[K" + text) if self.live else text + "\n")
        self.stream.flush()
        self.shown = True

    def done(self) -> None:
        if self.live and self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _last_error(path: Path) -> str | None:
    """The worker's ``error:`` line, if it wrote one."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return errors[-1] if errors else None
