"""The live tracking worker: ``python -m koderz.tracking follow RUN_FOLDER --tracking JSON``.

The run starts it (``koderz.tracking.live``) in a session of its own, so importing mlflow and
logging never take the run's GIL and a Ctrl-C at the terminal reaches the run only. Its stdin
is a pipe from the run: ``.`` for each finished problem, ``d`` when the run never started (its
MLflow run is deleted), end of file when the run is over. It opens the MLflow run as soon as
the folder has its config, logs finished problems in batches (at most one sync per
``BATCH_SECONDS`` while problems finish, so a batch holds several traces), and at the end logs
the rest, the summary and the files. SIGTERM stops it between two batches: the MLflow run is
marked KILLED with ``koderz.tracking=incomplete`` and ``python -m koderz.tracking log`` finishes
it later. Exit codes: 0 logged, 3 stopped, 1 failed (one ``error:`` line on stderr).
"""

from __future__ import annotations

import logging
import os
import select
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported by follow(): the handlers are in place before the heavy imports
    from koderz.config import TrackingConfig
    from koderz.records import RunFolder
    from koderz.tracking.logger import RunLogger

log = logging.getLogger(__name__)

BATCH_SECONDS = 1.0
POLL_SECONDS = 2.0  # wakes without a byte: the folder's config appears, a wake that was dropped
STOPPED = 3
DISCARD = b"d"


class Signals:
    """SIGTERM asks the worker to stop after the batch it is writing (installed first thing)."""

    def __init__(self) -> None:
        self.stop = False
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run's Ctrl-C is the run's

    def _on_term(self, _signum: int, _frame: FrameType | None) -> None:
        self.stop = True


def follow(
    signals: Signals,
    path: Path,
    tracking: TrackingConfig,
    *,
    parent_run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> int:
    """Follow the run in ``path`` until its end; returns the exit code."""
    from koderz.records import RunFolder
    from koderz.tracking.logger import TRACE_BATCH, RunLogger

    folder = RunFolder(path)
    started = time.perf_counter()
    with RunLogger(folder, tracking, parent_run_id=parent_run_id, tags=tags) as logger:
        ready = time.perf_counter() - started
        log.info("store %s open", logger.uri)
        ended, discard = _follow_run(folder, logger, signals)
        flush_began = time.perf_counter()
        if discard:
            logger.discard()
            return 0
        if logger.progress is None and folder.has_config():
            logger.open()
        if logger.progress is None:  # the run left no folder to log
            return 0
        while not signals.stop and logger.sync(TRACE_BATCH):
            pass
        if signals.stop:
            logger.stop("logging was stopped (Ctrl-C during the final flush)")
            return STOPPED
        state = folder.read_state()
        if ended and folder.has_results() and state is not None and state.status != "running":
            logger.finish(
                {"timing.tracking.worker_ready": ready, "timing.tracking.flush": time.perf_counter() - flush_began}
            )
            log.info("finished the MLflow run %.2f s after the run's end", time.perf_counter() - flush_began)
            return 0
        logger.stop("the run ended without its results (killed)", interrupted=True)
        return 0


def _follow_run(folder: RunFolder, logger: RunLogger, signals: Signals) -> tuple[bool, bool]:
    """Log batches while the run runs; returns (the run closed the pipe, the run asked to discard)."""
    stdin = sys.stdin.fileno()
    last_sync = 0.0
    pending = False
    while not signals.stop:
        wait = POLL_SECONDS if not pending else max(0.0, last_sync + BATCH_SECONDS - time.monotonic())
        try:
            readable, _, _ = select.select([stdin], [], [], wait)
        except InterruptedError:
            continue
        if readable:
            data = os.read(stdin, 4096)
            if not data:
                return True, False
            if DISCARD in data:
                return True, True
            pending = True
        if logger.progress is None and folder.has_config():
            logger.open()
        elif not readable and not pending and logger.tracking.figures:
            import koderz.tracking.figures  # noqa: F401  # while idle, not in the final flush
        if logger.progress is not None and time.monotonic() - last_sync >= BATCH_SECONDS:
            began = time.perf_counter()
            count = logger.sync()
            if count:
                log.info("logged %d problems in %.2f s", count, time.perf_counter() - began)
            last_sync, pending = time.monotonic(), False
    return False, False
