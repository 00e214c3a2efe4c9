"""log_run_folder against a real MLflow SQLite store in tmp_path."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from koderz.errors import ConfigError
from koderz.tracking.mlflow_tracker import (
    flatten_params,
    load_run_folder,
    log_run_folder,
    solved_within,
)

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.0

# (task_id, passed, attempts, solved_at) in finishing order
FAKE_PROBLEMS = [
    ("HumanEval/1", True, 1, 1),
    ("HumanEval/0", False, 3, None),
    ("HumanEval/3", True, 2, 2),
    ("HumanEval/2", True, 3, 3),
]


def write_fake_run_folder(
    run_dir: Path,
    *,
    model: str = "qwen-7b",
    mode: str = "iterative",
    dataset: str = "humaneval",
    temperature: float = 0.2,
    tracking: dict | None = None,
    overrides: list[str] | None = None,
) -> Path:
    """Write a FAKE run folder shaped exactly like the runner's output.

    ``overrides`` become ``.hydra/overrides.yaml`` (inside a Hydra job, Hydra writes it).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "model": {"name": model, "provider": "ollama", "tier": "local", "prices": {"input": 0.0, "output": 0.0}},
        "dataset": {"name": dataset},
        "mode": {"name": mode},
        "tracking": tracking or {"enabled": True},
        "start": 0,
        "end": 4,
        "concurrency": 2,
        "max_iterations": 3,
        "checkpoint_interval": 2,
        "n_samples": 1,
        "seed": 7,
        "temperature": temperature,
        "long_text": "x" * 7000,
        "stop": ["\n\n", "def "],
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    problems, traces = [], []
    for i, (task_id, passed, attempts, solved_at) in enumerate(FAKE_PROBLEMS):
        start, end = T0 + i, T0 + i + 0.9
        cost = {
            "total": 0.01 * attempts,
            "by_tier": {"local": 0.01 * attempts},
            "by_phase": {"spec": 0.0, "attempts": 0.01 * attempts, "checkpoints": 0.0},
            "frontier_estimate": 0.05 * attempts,
            "savings": 0.04 * attempts,
        }
        problems.append(
            {
                "task_id": task_id,
                "passed": passed,
                "attempts": attempts,
                "solved_at": solved_at,
                "tests_passed": 3 if passed else 1,
                "tests_total": 3,
                "status": "passed" if passed else "failed",
                "error": None if passed else "AssertionError: expected 4",
                "duration": 0.9,
                "finished_at": end,
                "tokens": {"input": 100 * attempts, "output": 50 * attempts, "cached_input": 0},
                "cost": cost,
                "samples": [
                    {"sample_index": 0, "passed": passed, "status": "passed", "tests_passed": 3, "tests_total": 3}
                ],
            }
        )
        spans = [
            {
                "name": "spec_generation",
                "start": start,
                "end": start + 0.1,
                "attributes": {
                    "prompt": f"spec for {task_id}",
                    "answer": "a spec",
                    "model": "frontier",
                    "input_tokens": 20,
                    "output_tokens": 10,
                },
            },
            {"name": "cortex_remember", "start": start + 0.1, "end": start + 0.15, "attributes": {"query": task_id}},
        ]
        for it in range(1, attempts + 1):
            t = start + 0.15 + 0.2 * it
            ok = solved_at == it
            spans += [
                {
                    "name": "iteration_generate",
                    "start": t,
                    "end": t + 0.1,
                    "attributes": {
                        "iteration": it,
                        "prompt": f"PROMPT {task_id} #{it}",
                        "answer": f"ANSWER {task_id} #{it}",
                        "tokens": {"input": 100, "output": 50},
                    },
                },
                {
                    "name": "iteration_test",
                    "start": t + 0.1,
                    "end": t + 0.2,
                    "attributes": {
                        "iteration": it,
                        "status": "passed" if ok else "failed",
                        "tests_passed": 3 if ok else 1,
                        "tests_total": 3,
                        "error": None if ok else "AssertionError: expected 4",
                    },
                },
            ]
        traces.append({"task_id": task_id, "passed": passed, "start": start, "end": end, "spans": spans})
    n_passed = sum(p["passed"] for p in problems)
    summary = {
        "run_id": "20240101-000000",
        "model": model,
        "mode": mode,
        "dataset": dataset,
        "problems": len(problems),
        "passed": n_passed,
        "pass_rate": n_passed / len(problems),
        "pass_at_k": {"pass@1": 0.75},
        "mean_attempts": 2.25,
        "tokens": {"input": 900, "output": 450, "cached_input": 0},
        "cost": {
            "total": 0.09,
            "by_tier": {"local": 0.09},
            "by_phase": {"spec": 0.0, "attempts": 0.09, "checkpoints": 0.0},
            "frontier_estimate": 0.45,
            "savings": 0.36,
        },
        "duration": 4.2,
        "throughput": 4 / 4.2,
        "isolation": {"sandbox": "subprocess"},
        "cached": 0,
    }
    timing = {
        "total_duration": 4.2,
        "tracked_duration": 4.0,
        "overhead": 0.2,
        "phase_count": 20,
        "mean_in_flight": 1.6,
        "categories": {
            "iteration": {"busy": 2.5, "wall": 1.9, "count": 18, "percent": 62.5},
            "spec": {"busy": 0.4, "wall": 0.4, "count": 4, "percent": 10.0},
        },
        "phase_totals": {},
        "phases": [],
        "per_problem": {},
    }
    (run_dir / "results.json").write_text(json.dumps({"summary": summary, "problems": problems, "timing": timing}))
    (run_dir / "results.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems))
    (run_dir / "timing.json").write_text(json.dumps(timing))
    (run_dir / "samples.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "task_id": p["task_id"],
                    "sample_index": 0,
                    "solution": "pass",
                    "passed": p["passed"],
                    "tests_passed": p["tests_passed"],
                    "tests_total": 3,
                    "status": p["status"],
                }
            )
            + "\n"
            for p in problems
        )
    )
    (run_dir / "traces.jsonl").write_text("".join(json.dumps(t) + "\n" for t in traces))
    (run_dir / "koderz.log").write_text("INFO koderz: fake run\n")
    if overrides is not None:
        (run_dir / ".hydra").mkdir(exist_ok=True)
        (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return run_dir


def fresh_store(tmp_path_factory: pytest.TempPathFactory, dest: Path) -> str:
    """Copy an empty, migrated MLflow SQLite store to ``dest``; return its URI.

    Creating the tables takes MLflow several seconds, so it happens once per session.
    """
    template = tmp_path_factory.getbasetemp() / "mlflow-template.db"
    if not template.exists():
        import mlflow

        building = template.with_suffix(".building")
        mlflow.MlflowClient(f"sqlite:///{building}").search_experiments()
        building.rename(template)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, dest)
    return f"sqlite:///{dest}"


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """One fake folder logged to a real SQLite store; yields (client, run, tmp dir)."""
    import mlflow

    tmp = tmp_path_factory.mktemp("mlflow")
    folder = write_fake_run_folder(tmp / "run", overrides=["model=qwen-7b", "temperature=0.2"])
    cfg = {
        "uri": fresh_store(tmp_path_factory, tmp / "mlflow.db"),
        "experiment": "koderz-test",
        "artifact_location": str(tmp / "artifacts"),
    }
    run_id = log_run_folder(folder, cfg, tags={"koderz.sweep_id": "sweep-1"})
    assert run_id is not None
    client = mlflow.MlflowClient(cfg["uri"])
    mlflow.set_tracking_uri(cfg["uri"])  # search_traces / load_table use the global URI
    yield client, client.get_run(run_id), tmp
    mlflow.set_tracking_uri(None)


def test_run_is_named_after_model_mode_dataset_in_configured_experiment(logged):
    client, run, tmp = logged
    assert run.info.run_name == "qwen-7b-iterative-humaneval"
    assert run.info.status == "FINISHED"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "koderz-test"
    assert experiment.artifact_location == (tmp / "artifacts").resolve().as_uri()


def test_params_are_the_flattened_config_within_mlflow_limits(logged):
    _, run, _ = logged
    params = run.data.params
    assert params["model.name"] == "qwen-7b"
    assert params["model.prices.output"] == "0.0"
    assert params["temperature"] == "0.2"
    assert params["max_iterations"] == "3"
    assert json.loads(params["stop"]) == ["\n\n", "def "]
    assert len(params["long_text"]) == 6000


def test_tags_carry_version_overrides_and_sweep_id(logged):
    _, run, _ = logged
    tags = run.data.tags
    assert tags["koderz.version"] == "0.1.0"
    assert tags["koderz.overrides"] == "model=qwen-7b temperature=0.2"
    assert tags["koderz.sweep_id"] == "sweep-1"
    assert tags["koderz.run_id"] == "20240101-000000"
    git = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    if git.returncode == 0:
        assert tags["koderz.git_commit"] == git.stdout.strip()


def test_summary_cost_and_timing_metrics(logged):
    _, run, _ = logged
    m = run.data.metrics
    assert m["pass_rate"] == 0.75 and m["passed"] == 3 and m["problems"] == 4
    assert m["pass_at_1"] == 0.75 and m["mean_attempts"] == 2.25
    assert m["tokens.input"] == 900 and m["tokens.output"] == 450
    assert m["cost.total"] == 0.09 and m["cost.tier.local"] == 0.09
    assert m["cost.phase.attempts"] == 0.09 and m["cost.frontier_estimate"] == 0.45
    assert m["cost.savings"] == 0.36 and m["duration"] == 4.2
    assert m["throughput"] == pytest.approx(4 / 4.2)
    assert m["timing.iteration.busy"] == 2.5 and m["timing.iteration.wall"] == 1.9
    assert m["timing.spec.busy"] == 0.4 and m["timing.mean_in_flight"] == 1.6


def test_stepped_metrics_follow_finishing_order_and_iterations(logged):
    client, run, _ = logged
    history = client.get_metric_history(run.info.run_id, "cumulative_pass_rate")
    assert [(h.step, h.value) for h in sorted(history, key=lambda h: h.step)] == [
        (1, 1.0),
        (2, 0.5),
        (3, 2 / 3),
        (4, 0.75),
    ]
    assert sorted(h.timestamp for h in history)[0] == int((T0 + 0.9) * 1000)
    curve = client.get_metric_history(run.info.run_id, "solved_within_iterations")
    assert [(h.step, h.value) for h in sorted(curve, key=lambda h: h.step)] == [(1, 0.25), (2, 0.5), (3, 0.75)]


def test_artifacts_table_and_figures_are_logged(logged):
    client, run, tmp = logged
    run_id = run.info.run_id
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {
        "results.json",
        "samples.jsonl",
        "timing.json",
        "config.yaml",
        "koderz.log",
        "problems.json",
        "figures",
    } <= names
    figs = {a.path for a in client.list_artifacts(run_id, "figures")}
    assert figs == {
        "figures/pass_rate_by_iteration.png",
        "figures/time_by_category.png",
        "figures/cost_vs_pass_rate.png",
    }
    png = Path(client.download_artifacts(run_id, "figures/time_by_category.png", str(tmp)))
    assert png.read_bytes()[:4] == b"\x89PNG"
    table = client.load_table(run.info.experiment_id, "problems.json", run_ids=[run_id])
    assert list(table["task_id"]) == [p[0] for p in FAKE_PROBLEMS]
    assert list(table["solved_at"].fillna(0)) == [1, 0, 2, 3]
    assert list(table["cost_usd"]) == pytest.approx([0.01, 0.03, 0.02, 0.03])


def test_one_trace_per_problem_with_prompts_answers_and_original_times(logged):
    import mlflow

    _client, run, _ = logged
    traces = mlflow.search_traces(locations=[run.info.experiment_id], run_id=run.info.run_id, return_type="list")
    assert sorted(t.info.tags["koderz.task_id"] for t in traces) == sorted(p[0] for p in FAKE_PROBLEMS)
    failed = next(t for t in traces if t.info.tags["koderz.task_id"] == "HumanEval/0")
    assert failed.info.state.value == "ERROR"
    root = next(s for s in failed.data.spans if s.parent_id is None)
    assert root.name == "HumanEval/0" and root.start_time_ns == int((T0 + 1) * 1e9)
    assert root.outputs["error"] == "AssertionError: expected 4"
    children = [s for s in failed.data.spans if s.parent_id == root.span_id]
    assert [s.name for s in children][:4] == [
        "spec_generation",
        "cortex_remember",
        "iteration_generate #1",
        "iteration_test #1",
    ]
    assert len(children) == 2 + 2 * 3
    gen3 = next(s for s in children if s.name == "iteration_generate #3")
    assert gen3.inputs == {"prompt": "PROMPT HumanEval/0 #3"}
    assert gen3.outputs == {"answer": "ANSWER HumanEval/0 #3"}
    assert gen3.span_type == "LLM"
    assert gen3.get_attribute("mlflow.chat.tokenUsage") == {
        "input_tokens": 100,
        "output_tokens": 50,
        "total_tokens": 150,
    }
    assert gen3.start_time_ns == int((T0 + 1 + 0.15 + 0.6) * 1e9)
    test3 = next(s for s in children if s.name == "iteration_test #3")
    assert test3.outputs["status"] == "failed" and test3.outputs["tests_passed"] == 1
    passed = next(t for t in traces if t.info.tags["koderz.task_id"] == "HumanEval/1")
    assert passed.info.state.value == "OK"


def test_unreachable_server_returns_none_with_one_warning(tmp_path, caplog, monkeypatch):
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    folder = write_fake_run_folder(tmp_path / "run")
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    with caplog.at_level(logging.WARNING):
        assert log_run_folder(folder, {"uri": "http://127.0.0.1:1"}) is None
    ours = [r for r in caplog.records if r.name.startswith("koderz")]
    assert len(ours) == 1 and "python -m koderz.tracking log" in ours[0].getMessage()
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("kind", ["directory", "garbage"])
def test_broken_store_returns_none_with_one_warning(tmp_path, caplog, kind):
    folder = write_fake_run_folder(tmp_path / "run")
    store = tmp_path / "mlflow.db"
    if kind == "directory":
        store.mkdir()
    else:
        store.write_bytes(b"not a database" * 100)
    with caplog.at_level(logging.WARNING):
        assert log_run_folder(folder, {"uri": f"sqlite:///{store}"}) is None
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in warnings] == ["koderz.tracking.mlflow_tracker"]
    assert "broken MLflow store" in warnings[0].getMessage()


def test_not_a_run_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not a run folder"):
        load_run_folder(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ConfigError, match="broken run folder"):
        load_run_folder(tmp_path)


def test_flatten_params_and_solved_within():
    assert flatten_params({"hydra": {"x": 1}, "a": {"b": {"c": None}}, "d": []}) == {"a.b.c": "null", "d": "[]"}
    problems = [{"passed": True, "solved_at": 2}, {"passed": False, "solved_at": None}]
    assert solved_within(problems, 3) == [0.0, 0.5, 0.5]


def test_tracking_log_cli_uploads_a_folder(tmp_path, tmp_path_factory):
    import mlflow

    folder = write_fake_run_folder(tmp_path / "run", model="m1")
    uri = fresh_store(tmp_path_factory, tmp_path / "cli.db")
    cmd = [sys.executable, "-m", "koderz.tracking", "log"]
    bad = subprocess.run([*cmd, str(tmp_path / "nope")], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [f"error: not a run folder (no results.json): {tmp_path / 'nope'}"]
    done = subprocess.run(
        [*cmd, str(folder), "--uri", uri, "--experiment", "later"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        env={**_env(), "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    run = mlflow.MlflowClient(uri).get_run(done.stdout.strip())
    assert run.info.run_name == "m1-iterative-humaneval"
    assert run.data.metrics["pass_rate"] == 0.75
    assert (tmp_path / "outputs" / "mlartifacts").is_dir()  # default root, under cwd
    mlflow.set_tracking_uri(uri)
    assert (
        len(mlflow.search_traces(locations=[run.info.experiment_id], run_id=run.info.run_id, return_type="list")) == 4
    )


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
