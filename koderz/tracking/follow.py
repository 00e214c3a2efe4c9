"""The live tracking worker: ``python -m koderz.tracking follow``, one per tracked run.

The run starts it (``koderz.tracking.live``) once its config is checked, in a session of its
own, so importing mlflow and logging never take the run's GIL and a Ctrl-C at the terminal
reaches the run only; mlflow's imports overlap the run. Its stdin is a pipe of ``koderz.framing``
frames from the run: first ``SETTINGS`` (``Settings`` as JSON: the run folder, the tracking config,
the sweep's parent run, tags), then ``PROBLEM_DONE`` for each finished problem, ``DISCARD`` when
the run never started (its MLflow run is deleted), end of file when the run is over (or was killed: the worker then marks the MLflow run killed and exits,
so it never outlives the run); its output is the folder's tracking.log. It touches the store only once the first problem has finished
(a run that never starts kills its worker, and leaves no store), then opens the MLflow run,
logs finished problems in batches (at most one sync per ``BATCH_SECONDS`` while problems finish,
so a batch holds several traces), and at the end logs the rest, the summary and the files.
SIGTERM stops it between two batches: the MLflow run is marked KILLED with
``koderz.tracking=incomplete`` and ``python -m koderz.tracking log`` finishes it later. Exit
codes: 0 logged, 3 stopped, 1 failed (one ``error:`` line on stderr).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import resource
import select
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from koderz.framing import FrameError, Kind, Message, frame, read_frame
from koderz.vocab import PartStatus

if TYPE_CHECKING:  # imported by warm_up(): the handlers are in place before the heavy imports
    from koderz.records import RunFolder
    from koderz.tracking.logger import RunLogger

log = logging.getLogger(__name__)

BATCH_SECONDS = 2.0  # a sync costs ~15 ms of CPU however few problems it logs
POLL_SECONDS = 2.0  # wakes without a byte: the folder's config appears, a wake that was dropped
STOPPED = 3
SETTINGS_LIMIT, SETTINGS_SECONDS = 1 << 20, 60.0  # the run writes them as it starts the worker
WAKE_LIMIT = 64  # bytes of a frame after the settings
BACKGROUND_NICENESS = 10
CAP_SYS_NICE = 23
CPU_LINE = "worker CPU"  # the last line of tracking.log: what tracking cost (benchmarks/default_path.py)


@dataclass
class Settings:
    """What the run tells its worker (the first frame on the worker's stdin)."""

    folder: str
    tracking: dict[str, Any]
    parent_run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def frame(self) -> bytes:
        return frame(Message(Kind.SETTINGS, json.dumps(dataclasses.asdict(self))))


def warm_up() -> None:
    """Import what logging needs (mlflow, its SQL store)."""
    import mlflow
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401

    import koderz.tracking.logger  # noqa: F401


def work(signals: Signals) -> int:
    """A worker's life once mlflow is imported: its settings, then the run; returns the exit
    code (``error:`` and one line on stderr when logging failed)."""
    settings = read_settings()
    if settings is None:  # the run ended before it sent them
        return 0
    try:
        code = follow(signals, settings)
    except Exception as err:  # noqa: BLE001 - one line for the run to show, not a traceback
        from koderz.tracking.mlflow_tracker import one_line

        print(f"error: {one_line(err)}", file=sys.stderr)
        code = 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    log.info(
        "%s %.2f s (user %.2f s, system %.2f s), peak RSS %d MB",
        CPU_LINE,
        usage.ru_utime + usage.ru_stime,
        usage.ru_utime,
        usage.ru_stime,
        usage.ru_maxrss // 1024,
    )
    logging.shutdown()
    sys.stderr.flush()
    return code


def run_in_background() -> None:
    """While the run runs, take only CPU time nothing else wants: a run's attempts are chains of
    short hand-offs between processes, and one of them waiting for the worker's time slice slows
    the run. SCHED_IDLE (preempted at once) where the worker may return to normal scheduling for
    its final flush; otherwise nice 10 (which an unprivileged process cannot undo either, but
    never starves)."""
    with contextlib.suppress(OSError, AttributeError):
        if may_raise_priority():
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        else:
            os.nice(BACKGROUND_NICENESS)


def run_in_foreground() -> None:
    """The run has ended and waits for the final flush: normal scheduling again (where allowed)."""
    with contextlib.suppress(OSError, AttributeError):
        if os.sched_getscheduler(0) == os.SCHED_IDLE:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def may_raise_priority() -> bool:
    """CAP_SYS_NICE, or an RLIMIT_NICE that lets this process back to nice 0."""
    try:
        status = Path("/proc/self/status").read_text()
        effective = int(next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), 16)
    except (OSError, StopIteration, ValueError):
        effective = 0
    return bool(effective & (1 << CAP_SYS_NICE)) or resource.getrlimit(resource.RLIMIT_NICE)[0] >= 20


def read_settings() -> Settings | None:
    """The first frame on stdin (what follows it, the run's wakes, is left there); None when the
    run closed the pipe first, ``FrameError`` if it is no ``SETTINGS`` frame within the bounds."""
    message = read_frame(sys.stdin.fileno(), SETTINGS_LIMIT, SETTINGS_SECONDS)
    if message is None:
        return None
    if message.kind is not Kind.SETTINGS:
        raise FrameError(f"a {message.kind.name} frame before the settings")
    return Settings(**json.loads(message.fields[0]))


def _log_to(folder: Path) -> None:
    """From now on stdout and stderr go to the run folder's tracking.log."""
    from koderz.records import RunFolder

    folder.mkdir(parents=True, exist_ok=True)
    target = os.open(RunFolder(folder).tracking_log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for stream in (1, 2):
        os.dup2(target, stream)
    os.close(target)


class Signals:
    """SIGTERM asks the worker to stop after the batch it is writing (installed first thing)."""

    def __init__(self) -> None:
        self.stop = False
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run's Ctrl-C is the run's

    def _on_term(self, _signum: int, _frame: FrameType | None) -> None:
        self.stop = True


def follow(signals: Signals, settings: Settings) -> int:
    """Follow the run in the settings' folder until its end; returns the exit code."""
    from koderz.config import TrackingConfig
    from koderz.records import RunFolder
    from koderz.timing import process_start
    from koderz.tracking.logger import TRACE_BATCH, RunLogger
    from koderz.tracking.names import Metric

    path = Path(settings.folder)
    _log_to(path)
    folder = RunFolder(path)
    tracking = TrackingConfig(**settings.tracking)
    imported = time.time() - process_start()
    if not _wait_for_start(signals):
        return STOPPED
    opening = time.perf_counter()
    with RunLogger(folder, tracking, parent_run_id=settings.parent_run_id, tags=settings.tags) as logger:
        ready = imported + time.perf_counter() - opening
        log.info("store %s open", logger.uri)
        run_in_background()  # mlflow imported and the store open (or created) at full speed; the rest yields
        if folder.has_config():
            logger.open()  # the MLflow run, with its params, before anything else
        if tracking.figures:
            from koderz.tracking import figures  # noqa: F401  # matplotlib imported now, not in the final flush
        ended, discard = _follow_run(folder, logger, signals)
        run_in_foreground()
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
        if ended and folder.has_results() and state is not None and state.status is not PartStatus.RUNNING:
            logger.finish({Metric.WORKER_READY: ready, Metric.FLUSH: time.perf_counter() - flush_began}, live=True)
            log.info("finished the MLflow run %.2f s after the run's end", time.perf_counter() - flush_began)
            return 0
        logger.stop("the run ended without its results (killed)", interrupted=True)
        return 0


def _wait_for_start(signals: Signals) -> bool:
    """Wait for the run's first wake (a finished problem) or the end of its pipe, without reading
    it; False when SIGTERM came before either. The store is touched only after this, so a run
    that never starts (its worker is killed) leaves no store behind."""
    stdin = sys.stdin.fileno()
    while True:
        try:
            readable, _, _ = select.select([stdin], [], [], 0 if signals.stop else POLL_SECONDS)
        except InterruptedError:
            continue
        if readable:
            return True
        if signals.stop:
            return False


def _follow_run(folder: RunFolder, logger: RunLogger, signals: Signals) -> tuple[bool, bool]:
    """Log batches while the run runs; returns (the run closed the pipe, the run asked to discard)."""
    stdin = sys.stdin.fileno()
    last_sync = 0.0
    pending = True  # the first wake is waiting in the pipe
    while not signals.stop:
        wait = POLL_SECONDS if not pending else max(0.0, last_sync + BATCH_SECONDS - time.monotonic())
        try:
            readable, _, _ = select.select([stdin], [], [], wait)
        except InterruptedError:
            continue
        if readable:
            message = read_frame(stdin, WAKE_LIMIT, POLL_SECONDS)  # written whole: here already
            if message is None:
                return True, False
            if message.kind is Kind.DISCARD:
                return True, True
            pending = True
        if logger.progress is None and folder.has_config():
            logger.open()
        if logger.progress is not None and time.monotonic() - last_sync >= BATCH_SECONDS:
            began = time.perf_counter()
            count = logger.sync()
            if count:
                log.info("logged %d problems in %.2f s", count, time.perf_counter() - began)
            last_sync, pending = time.monotonic(), False
    return False, False
