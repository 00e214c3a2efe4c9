"""Log a finished run folder to MLflow: params, metrics, artifacts, a table, figures, traces.

The tracker reads the run only through ``RunFolder`` and its typed records. ``mlflow`` is
imported inside the functions that need it, so a run with tracking off never pays its import.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import koderz
from koderz.config import TrackingConfig
from koderz.errors import ConfigError
from koderz.records import ProblemRecord, RunFolder, RunResults, RunSummary, RunTiming, TraceRecord
from koderz.tracking import figures
from koderz.vocab import Mode, Phase

log = logging.getLogger(__name__)

DEFAULT_URI = "sqlite:///outputs/mlflow.db"
ENV_KEYS = ("MLFLOW_TRACKING_URI", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
MAX_PARAM_VALUE = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
MAX_TAG_VALUE = 8000  # mlflow.utils.validation.MAX_TAG_VAL_LENGTH
INPUT_KEYS = ("prompt",)
OUTPUT_KEYS = ("answer", "status", "tests_passed", "tests_total", "error", "finish_reason")


def tracking_uri(tracking: TrackingConfig) -> str:
    """``tracking.uri``, else ``$MLFLOW_TRACKING_URI``, else the local SQLite store."""
    return tracking.uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def experiment_name(tracking: TrackingConfig, dataset: str) -> str:
    return tracking.experiment or f"koderz-{dataset}"


def is_remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


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
    uri = tracking_uri(tracking)
    try:
        return upload_run_folder(RunFolder.existing(run_dir), tracking, parent_run_id=parent_run_id, tags=tags)
    except Exception as err:  # noqa: BLE001 - tracking must never break a finished run
        log.warning("MLflow tracking to %s failed: %s; %s", uri, _one_line(err), remedy(run_dir, uri))
        return None


def remedy(run_dir: Path, uri: str) -> str:
    """Commands that log the folder later, as they can be typed."""
    local = f"python -m koderz.tracking log {run_dir} --uri {DEFAULT_URI}"
    if is_remote(uri):
        return (
            f"the run folder is complete: log it when the server is back with "
            f"`python -m koderz.tracking log {run_dir} --uri {uri}`, or into the local store now with `{local}`"
        )
    return f"the run folder is complete: log it later with `python -m koderz.tracking log {run_dir} --uri {uri}`"


def upload_run_folder(
    folder: RunFolder,
    tracking: TrackingConfig,
    *,
    parent_run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    """Log ``folder`` as one MLflow run and return its id; raises on any failure."""
    results = folder.read_results()
    with _store(tracking) as (mlflow, client):
        return _upload(mlflow, client, folder, results, tracking, parent_run_id, tags or {})


def start_sweep_run(tracking: TrackingConfig, dataset: str, name: str, tags: dict[str, str]) -> str:
    """Open the parent run of a sweep (not made active) and return its id."""
    with _store(tracking) as (_, client):
        run = client.create_run(_experiment_id(client, tracking, dataset), run_name=name, tags={**_base_tags(), **tags})
    return str(run.info.run_id)


def finish_sweep_run(tracking: TrackingConfig, parent_run_id: str) -> int:
    """Log the children's summary table, metrics and figure on the parent; end it.

    Returns the number of child runs found.
    """
    with _store(tracking) as (_, client):
        return _finish_sweep(client, parent_run_id)


def flatten_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted keys for nested mappings; other values as strings within MLflow's limit."""
    import json

    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out |= flatten_params(value, f"{name}.")
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            out[name[:250]] = text[:MAX_PARAM_VALUE]
    return out


def problem_table(problems: list[ProblemRecord]) -> dict[str, list[Any]]:
    """Columns of the per-problem table (one row per problem, in finishing order)."""
    return {
        "task_id": [p.task_id for p in problems],
        "mode": [p.mode.value for p in problems],
        "passed": [p.passed for p in problems],
        "base_passed": [p.base_passed for p in problems],
        "status": [p.status.value for p in problems],
        "attempts": [p.attempts for p in problems],
        "solved_at": [p.solved_at for p in problems],
        "tests_passed": [p.tests_passed for p in problems],
        "tests_total": [p.tests_total for p in problems],
        "error": [p.error for p in problems],
        "duration": [p.duration for p in problems],
        "cached": [p.cached for p in problems],
        "cost_usd": [p.cost.total for p in problems],
        "input_tokens": [p.tokens.input for p in problems],
        "output_tokens": [p.tokens.output for p in problems],
    }


def run_name(summary: RunSummary, variant: str = "") -> str:
    """Unique and informative: model, mode, dataset, what this sweep job varies, a short id."""
    shown = " ".join(o for o in variant.split() if not o.startswith(("model=", "mode=", "dataset=")))
    extra = f" {shown[:80]}" if shown else ""
    return f"{summary.model} {summary.mode.value} {summary.dataset}{extra} #{summary.run_id[-6:]}"


# --- internals -------------------------------------------------------------------------


def _upload(
    mlflow: Any,
    client: Any,
    folder: RunFolder,
    results: RunResults,
    tracking: TrackingConfig,
    parent_run_id: str | None,
    tags: dict[str, str],
) -> str:
    from mlflow.entities import Param, RunTag

    summary = results.summary
    if parent_run_id:  # a sweep's jobs live in their parent's experiment
        experiment_id = client.get_run(parent_run_id).info.experiment_id
    else:
        experiment_id = _experiment_id(client, tracking, summary.dataset)
    overrides = folder.read_overrides()
    run_tags = _run_tags(folder, summary, overrides) | tags
    status = "KILLED" if summary.interrupted else "FINISHED"
    run = client.create_run(
        experiment_id,
        run_name=run_name(summary, tags.get("koderz.variant", "")),
        tags={"mlflow.parentRunId": parent_run_id} if parent_run_id else None,
    )
    run_id = run.info.run_id
    client.log_batch(
        run_id,
        metrics=_metrics(results),
        params=[Param(k, v) for k, v in flatten_params(folder.read_config()).items()],
        tags=[RunTag(k, str(v)[:MAX_TAG_VALUE]) for k, v in run_tags.items()],
    )
    for path in folder.artifact_paths:
        client.log_artifact(run_id, str(path))
    if results.problems:
        client.log_table(run_id, problem_table(results.problems), "problems.json")
    if tracking.figures:
        _log_figures(client, run_id, results)
    if tracking.traces:
        by_key = {p.key: p for p in results.problems}
        for trace in folder.traces():
            _log_trace(mlflow, trace, experiment_id, by_key.get((trace.mode, trace.task_id)))
        mlflow.flush_trace_async_logging()  # spans export in batches; drain them now
    client.set_terminated(run_id, status)
    log.info("logged %s to MLflow run %s (%s)", folder.path, run_id, tracking_uri(tracking))
    return str(run_id)


def _finish_sweep(client: Any, parent_run_id: str) -> int:
    from mlflow.entities import Metric

    parent = client.get_run(parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
        max_results=10000,
    )
    rows = [_child_row(child) for child in children]
    if rows:
        table = {key: [row[key] for row in rows] for key in rows[0]}
        client.log_table(parent_run_id, table, "sweep_summary.json")
        points = [
            (r["run_name"], r["cost"], r["pass_rate"])
            for r in rows
            if r["cost"] is not None and r["pass_rate"] is not None
        ]
        if points:
            client.log_figure(parent_run_id, figures.cost_vs_pass_rate(points), "figures/cost_vs_pass_rate.png")
    rates = [r["pass_rate"] for r in rows if r["pass_rate"] is not None]
    costs = [r["cost"] for r in rows if r["cost"] is not None]
    values = {"children": float(len(rows))}
    if rates:
        values["best_pass_rate"] = max(rates)
    if costs:
        values |= {"min_cost": min(costs), "total_cost": sum(costs)}
    stamp = _now_ms()
    client.log_batch(parent_run_id, metrics=[Metric(k, float(v), stamp, 0) for k, v in values.items()])
    client.set_terminated(parent_run_id, "FINISHED")
    return len(rows)


@contextmanager
def _store(tracking: TrackingConfig) -> Iterator[tuple[Any, Any]]:
    """Point mlflow at the store for the duration; yield (mlflow, client).

    ``mlflow.set_tracking_uri`` also sets ``MLFLOW_TRACKING_URI`` in the environment;
    that and the HTTP settings are restored afterwards so nothing leaks into the caller.
    """
    uri = tracking_uri(tracking)
    saved = {key: os.environ.get(key) for key in ENV_KEYS}
    if is_remote(uri):  # fail fast on an unreachable server; the env wins if set
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(tracking.http_retries))
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(tracking.http_timeout))
    sqlite = re.match(r"sqlite:///(.+)", uri)
    if sqlite:
        _check_sqlite(Path(sqlite.group(1)))
    import mlflow

    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield mlflow, mlflow.MlflowClient(uri)
    finally:
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]  # None unsets it (mlflow's own default)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _check_sqlite(path: Path) -> None:
    """Fail fast on a broken SQLite store (MLflow itself retries for ~100 s)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        return
    try:
        with closing(sqlite3.connect(path, timeout=5)) as conn:
            conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as err:
        raise ConfigError(f"broken MLflow store {path}: {err}") from err


def _experiment_id(client: Any, tracking: TrackingConfig, dataset: str) -> str:
    """Id of the named experiment, created with artifacts under ``artifact_location``."""
    from mlflow.exceptions import MlflowException

    name = experiment_name(tracking, dataset)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    # a remote server decides where artifacts go; a local store gets an absolute path
    location = None if is_remote(tracking_uri(tracking)) else _artifact_uri(tracking.artifact_location)
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:  # a concurrent job created it first
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


def _artifact_uri(location: str) -> str:
    if "://" in location or location.startswith("file:"):
        return location
    path = Path(location).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path.as_uri()


def _run_tags(folder: RunFolder, summary: RunSummary, overrides: list[str]) -> dict[str, str]:
    roles = summary.roles
    tags = _base_tags() | {
        "koderz.model": summary.model,
        "koderz.mode": summary.mode.value,
        "koderz.dataset": summary.dataset,
        "koderz.prompt": summary.prompt,
        "koderz.spec_model": roles.spec or "-",
        "koderz.checkpoint_model": roles.reviewer or "-",
        "koderz.run_dir": str(folder.path.resolve()),
        "koderz.run_id": summary.run_id,
        "koderz.status": "interrupted" if summary.interrupted else "unanswered" if summary.unanswered else "complete",
    }
    if summary.interrupted:
        tags["koderz.interrupted"] = "true"
    if overrides:
        tags["koderz.overrides"] = " ".join(overrides)
    return tags


def _base_tags() -> dict[str, str]:
    tags = {"koderz.version": koderz.__version__}
    commit = _git_commit()
    if commit:
        tags["koderz.git_commit"] = commit
        tags["mlflow.source.git.commit"] = commit
    return tags


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _metrics(results: RunResults) -> list[Any]:
    from mlflow.entities import Metric

    stamp = _now_ms()
    values = summary_metrics(results.summary) | timing_metrics(results.timing)
    metrics = [Metric(k, v, stamp, 0) for k, v in values.items()]
    passed = 0
    for step, problem in enumerate(results.problems, start=1):
        passed += problem.passed
        metrics.append(Metric("cumulative_pass_rate", passed / step, int(problem.finished_at * 1000), step))
    for i, share in enumerate(results.summary.solved_within, start=1):
        metrics.append(Metric("solved_within_iterations", share, stamp, i))
    return metrics


def summary_metrics(summary: RunSummary) -> dict[str, float]:
    """Headline figures at the top level; the rest under dotted prefixes (grouped in the UI)."""
    values: dict[str, float] = {
        "pass_rate": summary.pass_rate,
        "passed": summary.passed,
        "problems": summary.problems,
        "unanswered": summary.unanswered,
        "cost_usd": summary.cost.total,
        "duration_s": summary.duration,
        "tokens.input": summary.tokens.input,
        "tokens.output": summary.tokens.output,
        "tokens.cached_input": summary.tokens.cached_input,
        "attempts.mean": summary.mean_attempts,
        "attempts.total": summary.attempts,
        "run.throughput": summary.throughput,
        "run.cached": summary.cached,
        "run.not_run": summary.not_run,
        "run.truncated": summary.truncated,
        "cost.frontier_estimate": summary.cost.frontier_estimate,
        "cost.savings": summary.cost.savings,
        "cost.saved_by_cache": summary.saved_cost,
    }
    for key, value in summary.pass_at_k.items():
        values[f"{key}.plus" if summary.base is not None else key] = value
    if summary.base is not None:
        values["pass_rate.base"] = summary.base.pass_rate
        for key, value in summary.base.pass_at_k.items():
            values[f"{key}.base"] = value
    for tier, value in summary.cost.by_tier.items():
        values[f"cost.tier.{tier}"] = value
    for phase, value in summary.cost.by_phase.items():
        values[f"cost.phase.{phase}"] = value
    return _numbers(values)


def timing_metrics(timing: RunTiming) -> dict[str, float]:
    values: dict[str, float] = {
        "timing.total_duration": timing.total_duration,
        "timing.tracked_wall": timing.tracked_wall,
        "timing.overhead": timing.overhead,
        "timing.model_busy": timing.model_busy,
        "timing.sandbox_busy": timing.sandbox_busy,
        "timing.mean_in_flight": timing.mean_in_flight,
    }
    for name, cat in timing.categories.items():
        values |= {f"timing.{name}.busy": cat.busy, f"timing.{name}.wall": cat.wall, f"timing.{name}.count": cat.count}
    return _numbers(values)


def _numbers(values: Mapping[str, float]) -> dict[str, float]:
    """Keep finite numbers, under names MLflow accepts."""
    return {re.sub(r"[^\w.\- /]", "_", key)[:250]: float(value) for key, value in values.items()}


def _log_figures(client: Any, run_id: str, results: RunResults) -> None:
    summary, made = results.summary, []
    if summary.solved_within:
        made.append(("pass_rate_by_iteration", figures.pass_rate_by_iteration(summary.solved_within)))
    if results.timing.categories:
        categories = {name: cat.model_dump() for name, cat in results.timing.categories.items()}
        made.append(("time_by_category", figures.time_by_category(categories)))
    points = [(summary.model, summary.cost.total, summary.pass_rate)]
    points.append(("frontier-only estimate", summary.cost.frontier_estimate, summary.pass_rate))
    made.append(("cost_vs_pass_rate", figures.cost_vs_pass_rate(points)))
    for name, fig in made:
        client.log_figure(run_id, fig, f"figures/{name}.png")


def _log_trace(mlflow: Any, trace: TraceRecord, experiment_id: str, record: ProblemRecord | None) -> None:
    """One trace per problem: a root span and one child per recorded phase span."""
    root = mlflow.start_span_no_context(
        f"{trace.task_id} ({trace.mode.value})" if trace.mode is not Mode.ZERO_SHOT else trace.task_id,
        span_type="AGENT",
        inputs={"task_id": trace.task_id, "mode": trace.mode.value},
        attributes={"task_id": trace.task_id, "passed": trace.passed},
        tags={"koderz.task_id": trace.task_id, "koderz.passed": str(trace.passed).lower()},
        experiment_id=experiment_id,
        start_time_ns=_ns(trace.start),
    )
    for span in sorted(trace.spans, key=lambda s: s.start):
        attrs = dict(span.attributes)
        inputs = {k: attrs.pop(k) for k in INPUT_KEYS if k in attrs}
        outputs = {k: attrs.pop(k) for k in OUTPUT_KEYS if k in attrs}
        name = f"{span.name} #{attrs['iteration']}" if "iteration" in attrs else span.name
        usage = _token_usage(attrs)
        if usage:
            attrs["mlflow.chat.tokenUsage"] = usage
        try:
            span_type = Phase(span.name).spec.span_type
        except ValueError:
            span_type = "UNKNOWN"
        child = mlflow.start_span_no_context(
            name,
            span_type=span_type,
            parent_span=root,
            inputs=inputs or None,
            attributes=attrs,
            start_time_ns=_ns(span.start),
        )
        child.end(outputs=outputs or None, end_time_ns=_ns(span.end))
    outcome = (
        record.model_dump(include={"passed", "attempts", "solved_at", "status", "tests_passed", "tests_total", "error"})
        if record is not None
        else {"passed": trace.passed}
    )
    root.end(outputs=outcome, status="OK" if trace.passed else "ERROR", end_time_ns=_ns(trace.end))


def _token_usage(attrs: Mapping[str, Any]) -> dict[str, int] | None:
    inp, out = attrs.get("input_tokens"), attrs.get("output_tokens")
    if not isinstance(inp, int) or not isinstance(out, int):
        return None
    return {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out}


def _child_row(run: Any) -> dict[str, Any]:
    tags, metrics = run.data.tags, run.data.metrics
    return {
        "run_name": tags.get("mlflow.runName", run.info.run_id),
        "model": tags.get("koderz.model"),
        "mode": tags.get("koderz.mode"),
        "dataset": tags.get("koderz.dataset"),
        "status": tags.get("koderz.status"),
        "overrides": tags.get("koderz.overrides", ""),
        "pass_rate": metrics.get("pass_rate"),
        "cost": metrics.get("cost_usd"),
        "duration": metrics.get("duration_s"),
        "run_id": run.info.run_id,
    }


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300] if text else ''}"
