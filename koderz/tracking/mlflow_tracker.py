"""MLflow pieces shared by the run logger and the sweep callback: the store, params, tags, metrics
(their names: ``koderz.tracking.names``).

The tracker reads the run only through ``RunFolder`` and its typed records. ``mlflow`` is
imported inside the functions that need it, so a run with tracking off never pays its import.
A local SQLite store is opened in WAL mode with ``synchronous=NORMAL`` (a SQLAlchemy connect
event): a commit then costs no fsync, and readers (``mlflow ui``) and writers do not block
each other.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import koderz
from koderz.config import TrackingConfig
from koderz.errors import ConfigError, KoderzError
from koderz.records import Interval, ProblemRecord, RunFolder, RunResults, RunSummary, RunTiming, Score
from koderz.tracking.names import (
    BASELINE_PARAMS,
    KEPT_PARAMS,
    NOISE_PARAMS,
    Artifact,
    Metric,
    MlflowStatus,
    Prefix,
    RunStatus,
    Tag,
)
from koderz.vocab import Mode

if TYPE_CHECKING:
    from koderz.plan import Plan

log = logging.getLogger(__name__)

DEFAULT_URI = "sqlite:///outputs/mlflow.db"
DATASET_DIGEST = 16  # characters of the dataset's content hash kept as its MLflow digest
ENV_KEYS = ("MLFLOW_TRACKING_URI", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
MAX_PARAM_VALUE = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
MAX_TAG_VALUE = 8000  # mlflow.utils.validation.MAX_TAG_VAL_LENGTH


def tracking_uri(tracking: TrackingConfig) -> str:
    """``tracking.uri``, else ``$MLFLOW_TRACKING_URI``, else the local SQLite store."""
    return tracking.uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def is_remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def remedy(run_dir: Path, uri: str) -> str:
    """Commands that log the folder later, as they can be typed."""
    local = f"python -m koderz.tracking log {run_dir} --uri {DEFAULT_URI}"
    if is_remote(uri):
        return (
            f"the run folder is complete: log it when the server is back with "
            f"`python -m koderz.tracking log {run_dir} --uri {uri}`, or into the local store now with `{local}`"
        )
    return f"the run folder is complete: log it later with `python -m koderz.tracking log {run_dir} --uri {uri}`"


def start_sweep_run(tracking: TrackingConfig, dataset: str, name: str, tags: dict[str, str]) -> str:
    """Open the parent run of a sweep (not made active) and return its id."""
    with store(tracking) as (_, client):
        tags = {str(k): v for k, v in (_base_tags() | tags).items()}
        run = client.create_run(experiment_id(client, tracking, dataset), run_name=name, tags=tags)
    return str(run.info.run_id)


def finish_sweep_run(tracking: TrackingConfig, parent_run_id: str, status: MlflowStatus = MlflowStatus.FINISHED) -> int:
    """Log the children's summary table, metrics and figure on the parent; end it with ``status``.

    Returns the number of child runs found.
    """
    with store(tracking) as (_, client):
        return _finish_sweep(client, parent_run_id, status)


def flatten_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted keys for nested mappings; other values as strings within MLflow's limit."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out |= flatten_params(value, f"{name}.")
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            out[name[:250]] = text[:MAX_PARAM_VALUE]
    return out


def run_params(config: Mapping[str, Any], plan: Plan) -> dict[str, str]:
    """The params that tell runs apart: the flattened config (whose plan is ``plan``) without the
    roles that take no part, endpoints, keys, timeouts and retries, and the tracking and timing
    switches (config.yaml, an artifact of the run, keeps everything)."""
    from koderz.resume import operational

    dropped = [
        *NOISE_PARAMS,
        *(
            f"{role}."
            for role, model in (("spec_model", plan.spec_writer), ("checkpoint_model", plan.reviewer))
            if model is None
        ),
    ]
    if plan.mode.spec.runs_problems:
        dropped.append("speed.")
    return {
        key: value
        for key, value in flatten_params(config).items()
        if not key.startswith(tuple(dropped))
        and (key in KEPT_PARAMS or not operational(key))
        and (not key.startswith("baseline_model.") or key.startswith(BASELINE_PARAMS))
    }


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


def run_name(plan: Plan, run_id: str, variant: str = "") -> str:
    """Unique and informative: model, mode, dataset, what this sweep job varies, a short id."""
    shown = " ".join(o for o in variant.split() if not o.startswith(("model=", "mode=", "dataset=")))
    extra = f" {shown[:80]}" if shown else ""
    return f"{plan.coder.name} {plan.mode.value} {plan.dataset}{extra} #{run_id[-6:]}"


def config_tags(plan: Plan, folder: RunFolder, run_id: str) -> dict[str, str]:
    """The run's tags known at its start: roles, dataset, prompt, folder, overrides."""
    roles = plan.roles
    tags = _base_tags() | {
        Tag.MODEL: plan.coder.name,
        Tag.MODE: plan.mode.value,
        Tag.DATASET: plan.dataset,
        Tag.PROMPT: plan.prompt_label,
        Tag.SPEC_MODEL: roles.spec or "-",
        Tag.CHECKPOINT_MODEL: roles.reviewer or "-",
        Tag.RUN_DIR: str(folder.path.resolve()),
        Tag.RUN_ID: run_id,
    }
    overrides = folder.read_overrides()
    if overrides:
        tags[Tag.OVERRIDES] = " ".join(overrides)
    return tags


def status_tag(summary: RunSummary) -> RunStatus:
    if summary.interrupted:
        return RunStatus.INTERRUPTED
    return RunStatus.UNANSWERED if summary.unanswered else RunStatus.COMPLETE


# --- internals -------------------------------------------------------------------------


def _finish_sweep(client: Any, parent_run_id: str, status: MlflowStatus) -> int:
    from mlflow.entities import Metric as MlflowMetric
    from mlflow.entities import Param

    parent = client.get_run(parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.{Tag.MLFLOW_PARENT_RUN_ID} = '{parent_run_id}'",
        max_results=10000,
    )
    rows = [_child_row(child) for child in children]
    if rows:
        table = {key: [row[key] for row in rows] for key in rows[0]}
        client.log_table(parent_run_id, table, Artifact.SWEEP_TABLE)
        points = [
            (r["run_name"], r["cost"], r["pass_rate"])
            for r in rows
            if r["cost"] is not None and r["pass_rate"] is not None
        ]
        if points:
            from koderz.tracking import figures

            client.log_figure(
                parent_run_id, figures.cost_vs_pass_rate(points), f"{Artifact.FIGURES}cost_vs_pass_rate.png"
            )
    rates = [r["pass_rate"] for r in rows if r["pass_rate"] is not None]
    costs = [r["cost"] for r in rows if r["cost"] is not None]
    values: dict[str, float] = {Metric.CHILDREN: float(len(rows))}
    if rates:
        values[Metric.BEST_PASS_RATE] = max(rates)
    if costs:
        values |= {Metric.MIN_COST: min(costs), Metric.TOTAL_COST: sum(costs)}
    stamp = now_ms()
    logged = parent.data.params
    swept = swept_params(parent.data.tags.get(Tag.OVERRIDES, ""))
    params = [Param(k, v) for k, v in swept.items() if k not in logged]
    metrics = [MlflowMetric(str(k), float(v), stamp, 0) for k, v in values.items()]
    client.log_batch(parent_run_id, metrics=metrics, params=params)
    if status != MlflowStatus.FINISHED:
        client.set_tag(parent_run_id, Tag.INTERRUPTED, "true")
    client.set_terminated(parent_run_id, status)
    return len(rows)


@contextmanager
def store(tracking: TrackingConfig) -> Iterator[tuple[Any, Any]]:
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
        _fast_sqlite()
    import mlflow

    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        client = _open_sqlite(Path(sqlite.group(1)), uri) if sqlite else mlflow.MlflowClient(uri)
        yield mlflow, client
    finally:
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]  # None unsets it (mlflow's own default)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def absolute_uri(uri: str) -> str:
    """A local SQLite URI with an absolute path (the same store from any directory)."""
    sqlite = re.match(r"sqlite:///(.+)", uri)
    if sqlite is None or sqlite.group(1).startswith("/"):
        return uri
    return f"sqlite:///{Path(sqlite.group(1)).resolve()}"


def _fast_sqlite() -> None:
    """WAL and synchronous=NORMAL on every SQLite connection SQLAlchemy opens in this process."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _on_connect):
        event.listen(Engine, "connect", _on_connect)


def _on_connect(connection: Any, _record: Any) -> None:
    if isinstance(connection, sqlite3.Connection):
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def _open_sqlite(path: Path, uri: str) -> Any:
    """A client of the SQLite store ``path``, made and its first query (which creates or
    migrates the schema) run under an exclusive lock on ``<db>.lock``: jobs that open a fresh
    store at the same moment (a sweep's parallel jobs, a SLURM array) otherwise race in alembic
    and some of them fail (docs/scale-out.md)."""
    import mlflow

    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            client = mlflow.MlflowClient(uri)
            client.search_experiments(max_results=1)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return client


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


def experiment_id(client: Any, tracking: TrackingConfig, dataset: str) -> str:
    """Id of the named experiment, created with artifacts under ``artifact_location``."""
    from mlflow.exceptions import MlflowException

    name = tracking.experiment or f"koderz-{dataset}"
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


def _base_tags() -> dict[str, str]:
    tags: dict[str, str] = {Tag.VERSION: koderz.__version__}
    commit = _git_commit()
    if commit:
        tags[Tag.GIT_COMMIT] = commit
        tags[Tag.MLFLOW_GIT_COMMIT] = commit
    return tags


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def summary_metrics(summary: RunSummary) -> dict[str, float]:
    """Headline figures at the top level, ``pass_rate`` (pass@1) first with its 95% interval;
    the rest under dotted prefixes (grouped in the UI); a comparative run's parts under
    ``<mode>/`` (nothing pooled)."""
    values: dict[str, float] = {
        Metric.PASS_RATE: summary.pass_rate,
        **_interval(Metric.PASS_RATE, summary.pass_rate_ci),
        Metric.PASSED: summary.passed,
        Metric.PROBLEMS: summary.problems,
        Metric.UNANSWERED: summary.unanswered,
        Metric.COST_USD: summary.cost.total,
        Metric.DURATION: summary.duration,
        Metric.TOKENS_INPUT: summary.tokens.input,
        Metric.TOKENS_OUTPUT: summary.tokens.output,
        Metric.TOKENS_CACHED_INPUT: summary.tokens.cached_input,
        Metric.ATTEMPTS_MEAN: summary.mean_attempts,
        Metric.ATTEMPTS_TOTAL: summary.attempts,
        Metric.THROUGHPUT: summary.throughput,
        Metric.CACHED: summary.cached,
        Metric.NOT_RUN: summary.not_run,
        Metric.TRUNCATED: summary.truncated,
        Metric.PREFILL_IGNORED: summary.prefill_ignored,
        Metric.SAMPLES_PER_TASK: summary.samples_per_task,
        Metric.FRONTIER_ESTIMATE: summary.cost.frontier_estimate,
        Metric.SAVINGS: summary.cost.savings,
        Metric.SAVED_BY_CACHE: summary.saved_cost,
        Metric.MEMORY_REUSE: float(summary.memory.reuse),
        Metric.MEMORY_SPECS_RECALLED: summary.memory.specs_recalled,
        Metric.MEMORY_SPEC_RUNS: len(summary.memory.spec_runs),
    }
    if summary.prefill_continued is not None:
        values[Metric.PREFILL_CONTINUED] = float(summary.prefill_continued)
    values |= _score_metrics("", summary.pass_at_k, summary.base)
    for tier, value in summary.cost.by_tier.items():
        values[f"{Prefix.COST_TIER}{tier}"] = value
    for phase, value in summary.cost.by_phase.items():
        values[f"{Prefix.COST_PHASE}{phase}"] = value
    if summary.comparative is not None:
        sides = {Mode.ZERO_SHOT: summary.comparative.zero_shot, Mode.ITERATIVE: summary.comparative.iterative}
        for mode, side in sides.items():
            prefix = f"{mode.value}/"
            values |= {
                f"{prefix}{Metric.PASS_RATE}": side.pass_rate,
                **_interval(f"{prefix}{Metric.PASS_RATE}", side.ci),
                f"{prefix}{Metric.PASSED}": side.passed,
                f"{prefix}{Metric.ANSWERED}": side.answered,
                f"{prefix}{Metric.ATTEMPTS_MEAN}": side.mean_attempts,
                f"{prefix}{Metric.COST_USD}": side.cost,
                f"{prefix}{Metric.TOKENS_INPUT}": side.tokens.input,
                f"{prefix}{Metric.TOKENS_OUTPUT}": side.tokens.output,
            }
            values |= _score_metrics(prefix, side.pass_at_k, side.base)
        values[Metric.IMPROVEMENT] = summary.comparative.improvement
    return _numbers(values)


def _interval(name: str, ci: Interval | None) -> dict[str, float]:
    """``<name>.ci_low`` and ``<name>.ci_high`` (``Metric.PASS_RATE_CI_LOW`` for the pass rate)."""
    return {} if ci is None else {f"{name}.ci_low": ci.low, f"{name}.ci_high": ci.high}


def _score_metrics(prefix: str, pass_at_k: dict[str, float], base: Score | None) -> dict[str, float]:
    """pass@k (``.plus`` beside ``.base`` on EvalPlus datasets) and the base tests' pass rate."""
    values = {f"{prefix}{key}.plus" if base is not None else f"{prefix}{key}": v for key, v in pass_at_k.items()}
    if base is not None:
        values[f"{prefix}{Metric.PASS_RATE_BASE}"] = base.pass_rate
        values |= _interval(f"{prefix}{Metric.PASS_RATE_BASE}", base.ci)
        for key, value in base.pass_at_k.items():
            values[f"{prefix}{key}.base"] = value
    return values


def timing_metrics(timing: RunTiming) -> dict[str, float]:
    values: dict[str, float] = {
        f"{Prefix.TIMING}total_duration": timing.total_duration,
        f"{Prefix.TIMING}tracked_wall": timing.tracked_wall,
        f"{Prefix.TIMING}overhead": timing.overhead,
        f"{Prefix.TIMING}model_busy": timing.model_busy,
        f"{Prefix.TIMING}sandbox_busy": timing.sandbox_busy,
        f"{Prefix.TIMING}mean_in_flight": timing.mean_in_flight,
    }
    if timing.model_server is not None:  # the servers' own time, where they report it, and over how many calls
        values |= {
            f"{Prefix.TIMING}model_server": timing.model_server,
            f"{Prefix.TIMING}model_server_calls": timing.model_server_calls,
        }
    for name, cat in timing.categories.items():
        at = f"{Prefix.TIMING}{name}"
        values |= {f"{at}.busy": cat.busy, f"{at}.wall": cat.wall, f"{at}.count": cat.count}
    return _numbers(values)


def _numbers(values: Mapping[str, float]) -> dict[str, float]:
    """Keep finite numbers, under names MLflow accepts."""
    return {re.sub(r"[^\w.\- /]", "_", str(key))[:250]: float(value) for key, value in values.items()}


def log_figures(client: Any, run_id: str, results: RunResults) -> None:
    """The run's figures, those that show something: the pass rate by iteration when the mode
    iterates, the time by category, cost against pass rate when the run cost anything."""
    from koderz.tracking import figures  # matplotlib: only when figures are drawn

    summary, made = results.summary, []
    if len(summary.solved_within) > 1:
        made.append(("pass_rate_by_iteration", figures.pass_rate_by_iteration(summary.solved_within)))
    if results.timing.categories:
        categories = {name.value: cat.model_dump() for name, cat in results.timing.categories.items()}
        made.append(("time_by_category", figures.time_by_category(categories)))
    if summary.cost.total > 0:
        points = [(summary.model, summary.cost.total, summary.pass_rate)]
        points.append(("frontier-only estimate", summary.cost.frontier_estimate, summary.pass_rate))
        made.append(("cost_vs_pass_rate", figures.cost_vs_pass_rate(points)))
    for name, fig in made:
        client.log_figure(run_id, fig, f"{Artifact.FIGURES}{name}.png")


def log_dataset(client: Any, run_id: str, dataset: str) -> None:
    """The run's dataset as an MLflow input: its name and its data file's content digest
    (``dataset_version``, the hash the result cache keys on), context ``evaluation``."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    from koderz.datasets.loaders import dataset_version

    try:
        full = dataset_version(dataset)
    except (KoderzError, OSError) as err:  # a dataset koderz cannot hash: the run is logged without it
        log.warning("dataset %s not logged as an MLflow input: %s", dataset, one_line(err))
        return
    digest = full[:DATASET_DIGEST]
    source = json.dumps({"koderz_dataset": dataset, "digest": full})
    entry = Dataset(name=dataset, digest=digest, source_type="koderz", source=source)
    client.log_inputs(run_id, datasets=[DatasetInput(entry, tags=[InputTag("mlflow.data.context", "evaluation")])])


def swept_params(overrides: str) -> dict[str, str]:
    """A sweep's swept keys and their values (``model=a,b`` -> ``sweep.model: a,b``) from its
    overrides as typed; the keys it holds fixed are in every child's params."""
    swept = (o.split("=", 1) for o in overrides.split() if "=" in o and ("," in o or "(" in o))
    return {f"sweep.{key}"[:250]: value[:MAX_PARAM_VALUE] for key, value in swept}


def _child_row(run: Any) -> dict[str, Any]:
    tags, metrics = run.data.tags, run.data.metrics
    return {
        "run_name": tags.get(Tag.MLFLOW_RUN_NAME, run.info.run_id),
        "model": tags.get(Tag.MODEL),
        "mode": tags.get(Tag.MODE),
        "dataset": tags.get(Tag.DATASET),
        "status": tags.get(Tag.STATUS),
        "overrides": tags.get(Tag.OVERRIDES, ""),
        "pass_rate": metrics.get(Metric.PASS_RATE),
        "pass_rate_ci_low": metrics.get(Metric.PASS_RATE_CI_LOW),
        "pass_rate_ci_high": metrics.get(Metric.PASS_RATE_CI_HIGH),
        "cost": metrics.get(Metric.COST_USD),
        "duration": metrics.get(Metric.DURATION),
        "run_id": run.info.run_id,
    }


def now_ms() -> int:
    return int(time.time() * 1000)


def one_line(err: BaseException) -> str:
    """An error as one line: its type and the first 300 characters of its first line."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300] if text else ''}"
