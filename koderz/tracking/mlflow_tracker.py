"""Log a finished run folder to MLflow: params, metrics, artifacts, a table, figures, traces.

The tracker only reads the files the runner wrote (``config.yaml``, ``results.json``,
``results.jsonl``, ``timing.json``, ``samples.jsonl``, ``traces.jsonl``, ``koderz.log``).
``mlflow`` is imported inside the functions that need it, so a run with tracking off
never pays its import time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import koderz
from koderz.errors import ConfigError
from koderz.tracking import figures

log = logging.getLogger(__name__)

DEFAULT_URI = "sqlite:///outputs/mlflow.db"
DEFAULT_ARTIFACTS = "outputs/mlartifacts"
ARTIFACT_FILES = ("results.json", "samples.jsonl", "timing.json", "config.yaml", "koderz.log")
ENV_KEYS = ("MLFLOW_TRACKING_URI", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
MAX_PARAM_VALUE = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
MAX_TAG_VALUE = 8000  # mlflow.utils.validation.MAX_TAG_VAL_LENGTH
SPAN_TYPES = {  # koderz span name -> MLflow span type
    "spec_generation": "LLM",
    "iteration_generate": "LLM",
    "checkpoint_review": "LLM",
    "iteration_test": "EVALUATOR",
}
INPUT_KEYS = ("prompt", "messages", "query", "code", "solution")
OUTPUT_KEYS = (
    "answer",
    "response",
    "output",
    "review",
    "status",
    "tests_passed",
    "tests_total",
    "error",
    "result",
    "memories",
)


@dataclass(frozen=True)
class RunFolder:
    """The finished files of one run, as the runner wrote them."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    problems: list[dict[str, Any]]  # in finishing order when results.jsonl exists
    timing: dict[str, Any] = field(default_factory=dict)
    traces: list[dict[str, Any]] = field(default_factory=list)

    @property
    def model(self) -> str:
        return str(self.summary.get("model") or _get(self.config, "model.name") or "model")

    @property
    def mode(self) -> str:
        return str(self.summary.get("mode") or _get(self.config, "mode.name") or "mode")

    @property
    def dataset(self) -> str:
        return str(self.summary.get("dataset") or _get(self.config, "dataset.name") or "dataset")

    @property
    def run_name(self) -> str:
        return f"{self.model}-{self.mode}-{self.dataset}"


@dataclass(frozen=True)
class TrackingSettings:
    """Where and how to log; built from the ``tracking`` config group."""

    uri: str = DEFAULT_URI
    experiment: str = "koderz"
    artifact_location: str = DEFAULT_ARTIFACTS
    traces: bool = True
    figures: bool = True
    http_timeout: int = 10
    http_retries: int = 0

    @classmethod
    def from_cfg(cls, tracking_cfg: Any, *, dataset: str = "default") -> TrackingSettings:
        """Read the ``tracking`` node (DictConfig or mapping); missing keys get defaults."""
        cfg = _plain(tracking_cfg) or {}
        if not isinstance(cfg, Mapping):
            raise ConfigError(f"tracking config must be a mapping, got {cfg!r}")
        return cls(
            uri=str(cfg.get("uri") or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI),
            experiment=str(cfg.get("experiment") or f"koderz-{dataset}"),
            artifact_location=str(cfg.get("artifact_location") or DEFAULT_ARTIFACTS),
            traces=bool(cfg.get("traces", True)),
            figures=bool(cfg.get("figures", True)),
            http_timeout=int(cfg.get("http_timeout", 10)),
            http_retries=int(cfg.get("http_retries", 0)),
        )

    @property
    def is_remote(self) -> bool:
        return self.uri.startswith(("http://", "https://"))


def log_run_folder(
    run_dir: Path,
    tracking_cfg: Any,
    *,
    parent_run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> str | None:
    """Log one finished run folder as one MLflow run; return its id, or None on failure.

    Never raises: any failure (missing files, unreachable server, broken store) becomes
    one warning, and the run folder stays the complete record.
    """
    try:
        folder = load_run_folder(run_dir)
        settings = TrackingSettings.from_cfg(tracking_cfg, dataset=folder.dataset)
        return upload_run_folder(folder, settings, parent_run_id=parent_run_id, tags=tags)
    except Exception as err:  # noqa: BLE001 - tracking must never break a finished run
        log.warning(
            "MLflow tracking failed, run folder %s is complete (log it later with "
            "`python -m koderz.tracking log %s`): %s",
            run_dir,
            run_dir,
            _one_line(err),
        )
        return None


def load_run_folder(run_dir: Path) -> RunFolder:
    """Read a run folder; raise ConfigError when it is not one."""
    run_dir = Path(run_dir)
    results_path = run_dir / "results.json"
    if not results_path.is_file():
        raise ConfigError(f"not a run folder (no results.json): {run_dir}")
    try:
        results = json.loads(results_path.read_text())
        summary = results["summary"]
        problems = _read_jsonl(run_dir / "results.jsonl") or list(results.get("problems", []))
        config = yaml.safe_load((run_dir / "config.yaml").read_text()) if (run_dir / "config.yaml").is_file() else {}
        timing = results.get("timing") or _read_json(run_dir / "timing.json")
        traces = _read_jsonl(run_dir / "traces.jsonl")
    except (ValueError, KeyError, TypeError, yaml.YAMLError) as err:
        raise ConfigError(f"broken run folder {run_dir}: {_one_line(err)}") from err
    if not isinstance(summary, dict) or not isinstance(config, dict):
        raise ConfigError(f"broken run folder {run_dir}: summary/config is not a mapping")
    return RunFolder(run_dir, config, summary, problems, timing or {}, traces)


def upload_run_folder(
    folder: RunFolder,
    settings: TrackingSettings,
    *,
    parent_run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    """Log ``folder`` as one MLflow run and return its id; raises on any failure."""
    with _store(settings) as (mlflow, client):
        return _upload(mlflow, client, folder, settings, parent_run_id, tags or {})


def start_sweep_run(settings: TrackingSettings, name: str, tags: dict[str, str]) -> str:
    """Open the parent run of a sweep (not made active) and return its id."""
    with _store(settings) as (_, client):
        run = client.create_run(
            _experiment_id(client, settings),
            run_name=name,
            tags={**_base_tags(), **tags},
        )
    return run.info.run_id


def finish_sweep_run(settings: TrackingSettings, parent_run_id: str) -> int:
    """Log the children's summary table, metrics and figure on the parent; end it.

    Returns the number of child runs found.
    """
    with _store(settings) as (_, client):
        return _finish_sweep(client, parent_run_id)


def flatten_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted keys for nested mappings; other values as strings within MLflow's limit."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if prefix == "" and key == "hydra":
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out |= flatten_params(value, f"{name}.")
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            out[name[:250]] = text[:MAX_PARAM_VALUE]
    return out


def problem_table(problems: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Columns of the per-problem table (one row per problem, in finishing order)."""
    columns = (
        "task_id",
        "passed",
        "attempts",
        "solved_at",
        "tests_passed",
        "tests_total",
        "status",
        "error",
        "duration",
    )
    table = {col: [p.get(col) for p in problems] for col in columns}
    table["cost_usd"] = [_get(p, "cost.total") for p in problems]
    table["input_tokens"] = [_get(p, "tokens.input") for p in problems]
    table["output_tokens"] = [_get(p, "tokens.output") for p in problems]
    return table


def solved_within(problems: list[dict[str, Any]], max_iterations: int) -> list[float]:
    """Share of problems solved within i iterations, for i = 1..max_iterations."""
    n = len(problems) or 1
    solved = [p.get("solved_at") for p in problems if p.get("passed")]
    return [sum(1 for s in solved if s is not None and s <= i) / n for i in range(1, max_iterations + 1)]


# --- internals -------------------------------------------------------------------------


def _upload(
    mlflow: Any,
    client: Any,
    folder: RunFolder,
    settings: TrackingSettings,
    parent_run_id: str | None,
    tags: dict[str, str],
) -> str:
    from mlflow.entities import Param, RunTag

    if parent_run_id:  # a sweep's jobs live in their parent's experiment
        experiment_id = client.get_run(parent_run_id).info.experiment_id
    else:
        experiment_id = _experiment_id(client, settings)
    run_tags = {**_run_tags(folder), **tags}
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=folder.run_name,
        parent_run_id=parent_run_id,
    ) as run:
        run_id = run.info.run_id
        client.log_batch(
            run_id,
            metrics=_metrics(folder),
            params=[Param(k, v) for k, v in flatten_params(folder.config).items()],
            tags=[RunTag(k, str(v)[:MAX_TAG_VALUE]) for k, v in run_tags.items()],
        )
        for name in ARTIFACT_FILES:
            if (folder.path / name).is_file():
                client.log_artifact(run_id, str(folder.path / name))
        if folder.problems:
            client.log_table(run_id, problem_table(folder.problems), "problems.json")
        if settings.figures:
            _log_figures(client, run_id, folder)
        if settings.traces:
            results = {str(p.get("task_id")): p for p in folder.problems}
            for record in folder.traces:
                _log_trace(mlflow, record, experiment_id, results)
            mlflow.flush_trace_async_logging()  # spans export in batches; drain them now
    log.info("logged %s to MLflow run %s (%s)", folder.path, run_id, settings.uri)
    return run_id


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
    values = {"children": len(rows)}
    if rates:
        values["best_pass_rate"] = max(rates)
    if costs:
        values |= {"min_cost": min(costs), "total_cost": sum(costs)}
    stamp = _now_ms()
    client.log_batch(parent_run_id, metrics=[Metric(k, float(v), stamp, 0) for k, v in values.items()])
    client.set_terminated(parent_run_id, "FINISHED")
    return len(rows)


@contextmanager
def _store(settings: TrackingSettings) -> Iterator[tuple[Any, Any]]:
    """Point mlflow at the store for the duration; yield (mlflow, client).

    ``mlflow.set_tracking_uri`` also sets ``MLFLOW_TRACKING_URI`` in the environment;
    that and the HTTP settings are restored afterwards so nothing leaks into the caller.
    """
    saved = {key: os.environ.get(key) for key in ENV_KEYS}
    if settings.is_remote:  # fail fast on an unreachable server; the env wins if set
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(settings.http_retries))
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(settings.http_timeout))
    sqlite = re.match(r"sqlite:///(.+)", settings.uri)
    if sqlite:
        _check_sqlite(Path(sqlite.group(1)))
    import mlflow

    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(settings.uri)
    try:
        yield mlflow, mlflow.MlflowClient(settings.uri)
    finally:
        mlflow.set_tracking_uri(previous)
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


def _experiment_id(client: Any, settings: TrackingSettings) -> str:
    """Id of the named experiment, created with artifacts under ``artifact_location``."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(settings.experiment)
    if found is not None:
        return found.experiment_id
    # a remote server decides where artifacts go; a local store gets an absolute path
    location = None if settings.is_remote else _artifact_uri(settings.artifact_location)
    try:
        return client.create_experiment(settings.experiment, artifact_location=location)
    except MlflowException:  # a concurrent job created it first
        found = client.get_experiment_by_name(settings.experiment)
        if found is None:
            raise
        return found.experiment_id


def _artifact_uri(location: str) -> str:
    if "://" in location or location.startswith("file:"):
        return location
    path = Path(location).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path.as_uri()


def _run_tags(folder: RunFolder) -> dict[str, str]:
    tags = _base_tags() | {
        "koderz.model": folder.model,
        "koderz.mode": folder.mode,
        "koderz.dataset": folder.dataset,
        "koderz.run_dir": str(folder.path.resolve()),
    }
    if folder.summary.get("run_id"):
        tags["koderz.run_id"] = str(folder.summary["run_id"])
    overrides = folder.path / ".hydra" / "overrides.yaml"
    if overrides.is_file():
        tags["koderz.overrides"] = " ".join(yaml.safe_load(overrides.read_text()) or [])
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


def _metrics(folder: RunFolder) -> list[Any]:
    from mlflow.entities import Metric

    stamp = _now_ms()
    values = _summary_values(folder.summary) | _timing_values(folder.timing)
    metrics = [Metric(k, v, stamp, 0) for k, v in values.items()]
    passed = 0
    for step, problem in enumerate(folder.problems, start=1):
        passed += bool(problem.get("passed"))
        when = int(float(problem.get("finished_at") or stamp / 1000) * 1000)
        metrics.append(Metric("cumulative_pass_rate", passed / step, when, step))
    if folder.mode == "iterative" and folder.problems:
        for i, share in enumerate(solved_within(folder.problems, _max_iterations(folder)), 1):
            metrics.append(Metric("solved_within_iterations", share, stamp, i))
    return metrics


def _summary_values(summary: Mapping[str, Any]) -> dict[str, float]:
    values: dict[str, Any] = {
        key: summary.get(key)
        for key in ("pass_rate", "passed", "problems", "mean_attempts", "duration", "throughput", "cached")
    }
    for key, value in (summary.get("pass_at_k") or {}).items():
        values[key.replace("@", "_at_")] = value
    for key, value in (summary.get("tokens") or {}).items():
        values[f"tokens.{key}"] = value
    cost = summary.get("cost") or {}
    for key in ("total", "frontier_estimate", "savings"):
        values[f"cost.{key}"] = cost.get(key)
    for tier, value in (cost.get("by_tier") or {}).items():
        values[f"cost.tier.{tier}"] = value
    for phase, value in (cost.get("by_phase") or {}).items():
        values[f"cost.phase.{phase}"] = value
    return _numbers(values)


def _timing_values(timing: Mapping[str, Any]) -> dict[str, float]:
    values: dict[str, Any] = {
        f"timing.{key}": timing.get(key)
        for key in ("total_duration", "tracked_duration", "overhead", "mean_in_flight", "phase_count")
    }
    for name, cat in (timing.get("categories") or {}).items():
        for key in ("busy", "wall", "percent", "count"):
            values[f"timing.{name}.{key}"] = (cat or {}).get(key)
    return _numbers(values)


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    """Keep numeric values only, under names MLflow accepts."""
    return {
        re.sub(r"[^\w.\- /]", "_", key)[:250]: float(value)
        for key, value in values.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def _max_iterations(folder: RunFolder) -> int:
    configured = folder.config.get("max_iterations")
    seen = max((int(p.get("attempts") or 0) for p in folder.problems), default=0)
    return max(int(configured) if isinstance(configured, int) else 0, seen, 1)


def _log_figures(client: Any, run_id: str, folder: RunFolder) -> None:
    made = []
    if folder.mode == "iterative" and folder.problems:
        curve = solved_within(folder.problems, _max_iterations(folder))
        made.append(("pass_rate_by_iteration", figures.pass_rate_by_iteration(curve)))
    categories = folder.timing.get("categories") or {}
    if categories:
        made.append(("time_by_category", figures.time_by_category(categories)))
    cost = folder.summary.get("cost") or {}
    rate = folder.summary.get("pass_rate")
    if isinstance(cost.get("total"), int | float) and isinstance(rate, int | float):
        points = [(folder.model, cost["total"], rate)]
        if isinstance(cost.get("frontier_estimate"), int | float):
            points.append(("frontier-only estimate", cost["frontier_estimate"], rate))
        made.append(("cost_vs_pass_rate", figures.cost_vs_pass_rate(points)))
    for name, fig in made:
        client.log_figure(run_id, fig, f"figures/{name}.png")


def _log_trace(
    mlflow: Any, record: Mapping[str, Any], experiment_id: str, problems: Mapping[str, Mapping[str, Any]]
) -> None:
    """One trace per problem: a root span and one child per recorded phase span."""
    task_id = str(record.get("task_id"))
    passed = bool(record.get("passed"))
    result = problems.get(task_id, {})
    root = mlflow.start_span_no_context(
        task_id,
        span_type="AGENT",
        inputs={"task_id": task_id},
        attributes={"task_id": task_id, "passed": passed},
        tags={"koderz.task_id": task_id, "koderz.passed": str(passed).lower()},
        experiment_id=experiment_id,
        start_time_ns=_ns(record.get("start")),
    )
    for span in sorted(record.get("spans") or [], key=lambda s: s.get("start") or 0):
        attrs = dict(span.get("attributes") or {})
        inputs = {k: attrs.pop(k) for k in INPUT_KEYS if k in attrs}
        outputs = {k: attrs.pop(k) for k in OUTPUT_KEYS if k in attrs}
        name = str(span.get("name", "span"))
        if "iteration" in attrs:
            name = f"{name} #{attrs['iteration']}"
        usage = _token_usage(attrs)
        if usage:
            attrs["mlflow.chat.tokenUsage"] = usage
        child = mlflow.start_span_no_context(
            name,
            span_type=SPAN_TYPES.get(str(span.get("name")), _span_type(name)),
            parent_span=root,
            inputs=inputs or None,
            attributes=attrs,
            start_time_ns=_ns(span.get("start")),
        )
        child.end(outputs=outputs or None, end_time_ns=_ns(span.get("end")))
    outcome = {
        k: result.get(k) for k in ("passed", "attempts", "solved_at", "status", "tests_passed", "tests_total", "error")
    }
    root.end(
        outputs=outcome if result else {"passed": passed},
        status="OK" if passed else "ERROR",
        end_time_ns=_ns(record.get("end")),
    )


def _span_type(name: str) -> str:
    return "MEMORY" if name.startswith("cortex") else "UNKNOWN"


def _token_usage(attrs: Mapping[str, Any]) -> dict[str, int] | None:
    tokens = attrs.get("tokens")
    if isinstance(tokens, Mapping):
        inp, out = tokens.get("input", tokens.get("input_tokens")), tokens.get("output", tokens.get("output_tokens"))
    else:
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
        "overrides": tags.get("koderz.overrides", ""),
        "pass_rate": metrics.get("pass_rate"),
        "cost": metrics.get("cost.total"),
        "duration": metrics.get("duration"),
        "run_id": run.info.run_id,
    }


def _plain(cfg: Any) -> Any:
    try:
        from omegaconf import DictConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        return cfg
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _ns(seconds: Any) -> int | None:
    return int(float(seconds) * 1e9) if isinstance(seconds, int | float) else None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300] if text else ''}"
