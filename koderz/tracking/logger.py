"""``RunLogger``: one run folder logged to one MLflow run, a batch at a time, resumable.

The same logger serves the live worker (``python -m koderz.tracking follow``), which logs each
batch of finished problems while the run runs, and ``python -m koderz.tracking log``, which logs
a finished folder or finishes the logging that was stopped. What the MLflow run already holds is
kept in the folder (``TrackingProgress``, through ``RunFolder``), so either can continue where
the other stopped, and a resumed koderz run continues the same MLflow run.

Each ``sync`` logs the problems that finished since the last one: a point of the cumulative
pass-rate curve each, the running headline figures, their rows of the problem table and their
traces (``koderz.tracking.traces``). ``finish`` logs the summary, the files and the figures and
ends the run: FINISHED, or KILLED with ``koderz.interrupted=true`` for an interrupted run.
``stop`` ends it KILLED with ``koderz.tracking=incomplete`` when logging itself is stopped.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from koderz.config import TrackingConfig
from koderz.records import ProblemRecord, RunFolder, RunResults, TraceRecord, TrackingProgress
from koderz.tracking import mlflow_tracker as mt
from koderz.tracking import traces
from koderz.tracking.names import Artifact, Metric, MlflowStatus, RunStatus, Tag, TrackingState
from koderz.vocab import Mode

log = logging.getLogger(__name__)

# MLflow rewrites the whole problem table on each append (~40 ms of CPU, 164 rows or 1): while the
# run runs, at most this often and once the rows to add are a quarter of those it holds
TABLE_SECONDS = 30.0
TABLE_GROWTH = 0.25
TRACE_BATCH = 100  # traces per store transaction (benchmarks/trace_logging.py: 32 cost 1.4x, 1 cost 3x the CPU of 164)
SYNC_CPU_LINE = "problems logged"  # tracking.log: how many, with the CPU their syncs took (benchmarks/default_path.py)


def key_of(record: ProblemRecord) -> str:
    return f"{record.mode.value} {record.task_id}"


class RunLogger:
    """Logs ``folder`` to an MLflow run in ``tracking``'s store (the folder's own run when it has one)."""

    def __init__(
        self,
        folder: RunFolder,
        tracking: TrackingConfig,
        *,
        parent_run_id: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.folder = folder
        self.tracking = tracking
        self.uri = mt.absolute_uri(mt.tracking_uri(tracking))
        self.parent_run_id = parent_run_id
        self.tags = tags or {}
        saved = folder.read_tracking()
        self.owned = saved is None or saved.uri == self.uri  # progress is kept for the folder's own store
        self.progress: TrackingProgress | None = saved if saved is not None and saved.uri == self.uri else None
        self._stack: Any = None
        self.client: Any = None
        self._tabled_at: float | None = None  # when the table was last appended (monotonic)
        self._results = folder.follow_records()  # each sync reads only what was appended since the last
        self._traces = folder.follow_traces()
        self._latest: dict[tuple[Mode, str], ProblemRecord] = {}  # each problem's latest record, in finishing order
        self._trace_of: dict[tuple[Mode, str], TraceRecord] = {}  # each problem's latest trace, until logged
        self.sync_cpu = 0.0  # this process's CPU seconds in sync(): the per-problem part of what logging costs
        self.synced = 0

    def __enter__(self) -> RunLogger:
        self._stack = mt.store(self.tracking)
        _, self.client = self._stack.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stack.__exit__(kind, exc, tb)

    # the MLflow run -----------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.progress is not None and self.progress.finished

    def open(self) -> str:
        """The MLflow run of this folder, created with its params and tags, or reopened (RUNNING)."""
        progress = self.progress
        if progress is not None and self._exists(progress.mlflow_run_id):
            if not progress.finished:
                self.client.update_run(progress.mlflow_run_id, status=MlflowStatus.RUNNING.value)
                self._set_tags(
                    progress.mlflow_run_id, {Tag.TRACKING: TrackingState.LIVE, Tag.STATUS: RunStatus.RUNNING}
                )
                self._drop_tags(progress.mlflow_run_id, Tag.TRACKING_STOPPED)
                progress.stopped = None
                self._save()
            return progress.mlflow_run_id
        return self._create()

    def _exists(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_run(run_id).info.lifecycle_stage == "active"
        except MlflowException:
            return False

    def _create(self) -> str:
        from mlflow.entities import Param, RunTag

        from koderz.plan import Plan

        config = self.folder.read_config()
        plan = Plan.read(self.folder)
        dataset = plan.config.dataset.name
        if self.parent_run_id:  # a sweep's jobs live in their parent's experiment
            experiment_id = str(self.client.get_run(self.parent_run_id).info.experiment_id)
        else:
            experiment_id = mt.experiment_id(self.client, self.tracking, dataset)
        state = self.folder.read_state()
        koderz_run_id = state.run_id if state else self.folder.path.name
        tags = mt.config_tags(plan, self.folder, koderz_run_id) | self.tags
        tags |= {Tag.STATUS: RunStatus.RUNNING, Tag.TRACKING: TrackingState.LIVE}
        name = mt.run_name(plan, koderz_run_id, self.tags.get(Tag.VARIANT, ""))
        run = self.client.create_run(
            experiment_id,
            run_name=name,
            tags={Tag.MLFLOW_PARENT_RUN_ID.value: self.parent_run_id} if self.parent_run_id else None,
        )
        run_id = str(run.info.run_id)
        self.client.log_batch(
            run_id,
            params=[Param(k, v) for k, v in mt.run_params(config, plan).items()],
            tags=[RunTag(str(k), str(v)[: mt.MAX_TAG_VALUE]) for k, v in tags.items()],
        )
        self.progress = TrackingProgress(uri=self.uri, experiment_id=experiment_id, mlflow_run_id=run_id)
        self._save()
        log.info("MLflow run %s for %s", run_id, self.folder.path)
        return run_id

    # problems ---------------------------------------------------------------------------

    def sync(self, limit: int | None = None) -> int:
        """Log the problems that finished since the last sync (at most ``limit``); returns how many."""
        began = time.process_time()
        try:
            count = self._sync(limit)
        finally:
            self.sync_cpu += time.process_time() - began
        self.synced += count
        return count

    def _sync(self, limit: int | None) -> int:
        from mlflow.entities import Metric as MlflowMetric

        progress = self._require()
        records = self._records()
        fresh = [r for r in records if progress.logged.get(key_of(r)) != r.finished_at][:limit]
        if not fresh:
            return 0
        metrics = []
        for record in fresh:
            progress.steps += 1
            progress.passed += record.passed
            stamp = int(record.finished_at * 1000)
            metrics.append(
                MlflowMetric(Metric.CUMULATIVE_PASS_RATE.value, progress.passed / progress.steps, stamp, progress.steps)
            )
        logged = {key_of(r) for r in fresh} | set(progress.logged)
        done = [r for r in records if key_of(r) in logged]
        now = mt.now_ms()
        metrics += [MlflowMetric(str(k), v, now, 0) for k, v in live_metrics(done, self._headline).items()]
        self.client.log_batch(progress.mlflow_run_id, metrics=metrics)
        if self.tracking.traces:
            self._log_traces(fresh)
        for record in fresh:
            progress.logged[key_of(record)] = record.finished_at
        if self._tabled_at is None or time.monotonic() - self._tabled_at >= TABLE_SECONDS:
            self.log_rows(at_least=TABLE_GROWTH * len(progress.tabled))
        self._save()
        return len(fresh)

    def log_rows(self, *, at_least: float = 1) -> None:
        """Add the logged problems that are not in the problem table yet, when there are ``at_least``
        of them (MLflow reads the whole table back and writes it again on each append)."""
        progress = self._require()
        rows = [
            r
            for r in self._records()
            if progress.logged.get(key_of(r)) == r.finished_at and progress.tabled.get(key_of(r)) != r.finished_at
        ]
        if not rows or len(rows) < at_least:
            return
        self._tabled_at = time.monotonic()
        self.client.log_table(progress.mlflow_run_id, mt.problem_table(rows), Artifact.PROBLEM_TABLE.value)
        for record in rows:
            progress.tabled[key_of(record)] = record.finished_at

    def _log_traces(self, records: list[ProblemRecord]) -> None:
        progress = self._require()
        new, again = self._traces.read()
        if again:
            self._trace_of.clear()
        self._trace_of |= {(t.mode, t.task_id): t for t in new}  # a problem run again: its last trace
        built = [
            traces.build_trace(trace, r, run_key=progress.mlflow_run_id, finished_at=r.finished_at)
            for r in records
            if (trace := self._trace_of.pop(r.key, None)) is not None
        ]
        for start in range(0, len(built), TRACE_BATCH):
            traces.log_traces(
                self.client, progress.experiment_id, progress.mlflow_run_id, built[start : start + TRACE_BATCH]
            )

    def _records(self) -> list[ProblemRecord]:
        """``RunFolder.records()``, reading only what was appended since the last call."""
        new, again = self._results.read()
        if again:
            self._latest.clear()
        for record in new:
            self._latest.pop(record.key, None)
            self._latest[record.key] = record
        return list(self._latest.values())

    @functools.cached_property
    def _headline(self) -> Mode:
        mode = self.folder.read_mode()
        return mode.spec.headline or mode

    # the end ----------------------------------------------------------------------------

    def finish(self, extra: Mapping[Metric, float] | None = None, *, live: bool = False) -> str:
        """Log what is left, the summary (with ``extra`` metrics), files and figures; end the run.
        The folder has results.json. ``live``: the run's own worker, whose job ends with this
        flush: ``duration_s`` is logged again last, to now (the job then adds the flush to
        results.json and timing.json the same way)."""
        results = self.folder.read_results()
        progress = self._require()
        while self.sync(TRACE_BATCH):
            pass
        self.log_rows()
        run_id = progress.mlflow_run_id
        self._log_summary(results, extra or {})
        for path in self.folder.artifact_paths:
            self.client.log_artifact(run_id, str(path))
        mt.log_dataset(self.client, run_id, results.summary.dataset)
        if self.tracking.figures:
            mt.log_figures(self.client, run_id, results)
        summary = results.summary
        tags: dict[Tag, str] = {Tag.STATUS: mt.status_tag(summary), Tag.TRACKING: TrackingState.COMPLETE}
        if summary.interrupted:
            tags[Tag.INTERRUPTED] = "true"
        if summary.mechanism is not None:
            tags[Tag.CONTAINMENT] = summary.mechanism.value
        if summary.release is not None:
            tags[Tag.DATASET_RELEASE] = summary.release
        self._set_tags(run_id, tags)
        self._drop_tags(run_id, *(() if summary.interrupted else (Tag.INTERRUPTED,)))
        if live:
            self._log_duration_to_now(summary.duration)
        status = MlflowStatus.KILLED if summary.interrupted else MlflowStatus.FINISHED
        self.client.set_terminated(run_id, status.value)
        progress.finished, progress.stopped = True, None
        self._save()
        log.info("%s: %d, with %.3f s of CPU", SYNC_CPU_LINE, self.synced, self.sync_cpu)
        log.info("logged %s to MLflow run %s (%s)", self.folder.path, run_id, self.uri)
        return run_id

    def _log_duration_to_now(self, duration: float) -> None:
        """``duration_s`` extended by the time since the run's last part ended (this flush)."""
        from mlflow.entities import Metric as MlflowMetric

        state = self.folder.read_state()
        ended = state.parts[-1].ended if state is not None and state.parts else None
        if ended is None:
            return
        now = time.time()
        total = duration + max(0.0, now - ended)
        point = MlflowMetric(Metric.DURATION.value, total, int(now * 1000), 0)
        self.client.log_batch(self._require().mlflow_run_id, metrics=[point])

    def _log_summary(self, results: RunResults, extra: Mapping[Metric, float]) -> None:
        from mlflow.entities import Metric as MlflowMetric

        now = mt.now_ms()
        values = mt.summary_metrics(results.summary) | mt.timing_metrics(results.timing)
        values |= {str(key): value for key, value in extra.items()}
        metrics = [MlflowMetric(str(k), v, now, 0) for k, v in values.items()]
        for i, share in enumerate(results.summary.solved_within, start=1):
            metrics.append(MlflowMetric(Metric.SOLVED_WITHIN.value, share, now, i))
        self.client.log_batch(self._require().mlflow_run_id, metrics=metrics)

    def stop(self, reason: str, *, interrupted: bool = False) -> None:
        """End the run KILLED with ``koderz.tracking=incomplete`` (logging stopped before the end)."""
        progress = self._require()
        self.log_rows()
        tags: dict[Tag, str] = {
            Tag.TRACKING: TrackingState.INCOMPLETE,
            Tag.TRACKING_STOPPED: reason[: mt.MAX_TAG_VALUE],
        }
        if interrupted:
            tags |= {Tag.INTERRUPTED: "true", Tag.STATUS: RunStatus.INTERRUPTED}
        self._set_tags(progress.mlflow_run_id, tags)
        self.client.set_terminated(progress.mlflow_run_id, MlflowStatus.KILLED.value)
        progress.stopped = reason
        self._save()

    def _set_tags(self, run_id: str, tags: Mapping[Tag, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(key.value, str(value)) for key, value in tags.items()])

    def _drop_tags(self, run_id: str, *keys: Tag) -> None:
        present = self.client.get_run(run_id).data.tags
        for key in keys:
            if key in present:
                self.client.delete_tag(run_id, key.value)

    def discard(self) -> None:
        """Delete the MLflow run of a run that never started (its folder is being removed)."""
        if self.progress is not None:
            self.client.delete_run(self.progress.mlflow_run_id)

    # progress ---------------------------------------------------------------------------

    def _require(self) -> TrackingProgress:
        if self.progress is None:
            raise RuntimeError("RunLogger.open() first")
        return self.progress

    def _save(self) -> None:
        if self.owned and self.progress is not None and self.folder.path.is_dir():
            self.folder.write_tracking(self.progress)


def live_metrics(records: list[ProblemRecord], headline: Mode) -> dict[Metric, float]:
    """The headline figures so far, over the problems of the headline mode that finished
    (``pass_rate`` is pass@1, as in the summary)."""
    from koderz.report import score

    own = [r for r in records if r.mode == headline]
    answered = [r for r in own if r.has_verdict]
    so_far = score(own, sampled=not headline.spec.feedback)
    return {
        Metric.PASS_RATE: so_far.pass_rate,
        Metric.PASSED: float(so_far.passed),
        Metric.ANSWERED: float(len(answered)),
        Metric.UNANSWERED: float(len(own) - len(answered)),
        Metric.COST_USD: sum(r.cost.total for r in records),
        Metric.TOKENS_INPUT: float(sum(r.tokens.input for r in records)),
        Metric.TOKENS_OUTPUT: float(sum(r.tokens.output for r in records)),
    }


def log_folder(
    path: Path,
    tracking: TrackingConfig,
    *,
    parent_run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    """Log a run folder in full, or finish logging it; returns the MLflow run id. Raises on failure.

    A folder without results.json (a killed run) is logged as far as it goes and ended KILLED.
    """
    folder = RunFolder.existing(path)
    with RunLogger(folder, tracking, parent_run_id=parent_run_id, tags=tags) as logger:
        run_id = logger.open()
        if logger.finished:
            return run_id
        if folder.has_results():
            return logger.finish()
        while logger.sync(TRACE_BATCH):
            pass
        logger.stop("the run folder has no results.json (the run was killed)", interrupted=True)
        return run_id


def log_run_folder(
    run_dir: Path,
    tracking: TrackingConfig,
    *,
    parent_run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> str | None:
    """Log one finished run folder as one MLflow run; return its id, or None on failure.

    Never raises: any failure (missing files, unreachable server, broken store) becomes one
    warning naming a command that logs the folder later, and the run folder stays complete.
    """
    uri = mt.tracking_uri(tracking)
    try:
        return log_folder(run_dir, tracking, parent_run_id=parent_run_id, tags=tags)
    except Exception as err:  # noqa: BLE001 - tracking must never break a finished run
        log.warning("MLflow tracking to %s failed: %s; %s", uri, mt.one_line(err), mt.remedy(run_dir, uri))
        return None
