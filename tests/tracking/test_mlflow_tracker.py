"""A run folder written by a real run, logged to a real MLflow SQLite store in tmp_path."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from koderz.config import TrackingConfig
from koderz.plan import Plan
from koderz.records import RunFolder
from koderz.tracking import logger as run_logger
from koderz.tracking.logger import RunLogger, log_run_folder
from koderz.tracking.mlflow_tracker import flatten_params, log_figures, run_params
from koderz.tracking.names import Metric, Prefix
from tests.conftest import run_job
from tests.support.fakes.scripted_server import Reply, Rules, ScriptedServer
from tests.support.mlflow_runs import TASKS, fresh_store, global_tracking_uri, real_run_folder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return real_run_folder(tmp_path_factory.mktemp("real") / "run")


@pytest.fixture(scope="module")
def logged(folder, tmp_path_factory):
    """The real folder logged to a real SQLite store; yields (client, run, tmp dir)."""
    import mlflow

    tmp = tmp_path_factory.mktemp("mlflow")
    tracking = TrackingConfig(
        enabled=True,
        uri=fresh_store(tmp_path_factory, tmp / "mlflow.db"),
        experiment="koderz-test",
        artifact_location=str(tmp / "artifacts"),
    )
    run_id = log_run_folder(folder, tracking, tags={"koderz.sweep_id": "sweep-1"})
    assert run_id is not None
    client = mlflow.MlflowClient(tracking.uri)
    assert tracking.uri is not None
    with global_tracking_uri(tracking.uri):  # search_traces / load_table use the global URI
        yield client, client.get_run(run_id), tmp


def test_the_real_run_has_the_mix_of_outcomes_the_tests_rely_on(folder) -> None:
    records = {r.task_id: r for r in RunFolder(folder).records()}
    assert [records[t].solved_at for t in TASKS] == [1, 2, None, 2]


def test_run_name_is_unique_and_informative_in_the_configured_experiment(logged) -> None:
    client, run, tmp = logged
    summary = RunFolder(Path(run.data.tags["koderz.run_dir"])).read_results().summary
    assert run.info.run_name == f"replay iterative humaneval #{summary.run_id[-6:]}"
    assert run.info.status == "FINISHED"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "koderz-test"
    assert experiment.artifact_location == (tmp / "artifacts").resolve().as_uri()


def test_params_are_the_flattened_config_without_what_never_tells_runs_apart(logged, folder) -> None:
    _, run, _ = logged
    config = RunFolder(folder).read_config()
    params = run.data.params
    assert params == run_params(config, Plan.read(RunFolder(folder)))
    assert params["model.name"] == "replay" and params["max_iterations"] == "2" and "concurrency" in params
    assert params["checkpoint_model.name"] == "coder"  # iterative: the reviewer takes part (the coder's model)
    everything = flatten_params(config)
    assert set(params) < set(everything)
    assert not [k for k in params if k.startswith(("tracking.", "timing.", "speed.")) or k.endswith(".base_url")]


def test_tags_name_every_role_and_the_status(logged) -> None:
    _, run, _ = logged
    tags = run.data.tags
    assert tags["koderz.model"] == "replay" and tags["koderz.mode"] == "iterative"
    assert (
        tags["koderz.spec_model"] == "replay" and tags["koderz.checkpoint_model"] == "replay"
    )  # they follow the coder
    assert tags["koderz.prompt"] == "koderz spec+cot" and tags["koderz.status"] == "complete"
    assert tags["koderz.sweep_id"] == "sweep-1"


def test_headline_metrics_equal_the_summary(logged, folder) -> None:
    _, run, _ = logged
    results = RunFolder(folder).read_results()
    metrics = run.data.metrics
    assert metrics["pass_rate"] == results.summary.pass_rate == 0.75
    assert metrics["cost_usd"] == results.summary.cost.total
    assert metrics["duration_s"] == results.summary.duration
    assert metrics["timing.total_duration"] == results.timing.total_duration
    assert metrics["timing.sandbox_busy"] == results.timing.sandbox_busy
    assert metrics["run.prefill_ignored"] == results.summary.prefill_ignored == 0  # koderz's protocol: no prefill


async def test_an_ignored_prefill_and_the_servers_own_time_reach_mlflow(
    tmp_path, tmp_path_factory, monkeypatch
) -> None:
    """A real ``experiment=evalplus`` run against the scripted server (a fake) that starts a new turn
    instead of continuing the prefilled answer and reports llama.cpp's ``timings``, logged to a real
    store: the prefill figures and the server's own time equal the run's record."""
    import mlflow

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-scripted")
    monkeypatch.chdir(tmp_path)
    new_turn = Reply(
        text="Here is the function:\n\n```python\ndef add(x: int, y: int):\n    return x + y\n```\n",
        timings={"prompt_ms": 12.5, "predicted_ms": 80.0},
    )
    continues_the_probe = Rules([(r"Count from 1 to 10", [" 5, 6, 7, 8, 9, 10"])], default=new_turn)
    async with ScriptedServer(continues_the_probe) as server:
        outcome = await run_job(
            tmp_path / "run",
            "experiment=evalplus",
            "dataset=humaneval_plus_mini",
            "model=gpt-4o-mini",
            f"model.base_url={server.openai_url}",
            "problems=[HumanEval/53]",
            "tracking=off",
            "cortex=off",
            "cache=false",
        )
    results = RunFolder(outcome.folder).read_results()
    assert results.summary.prefill_ignored == 1 and results.summary.prefill_continued is True
    assert results.timing.model_server == pytest.approx(0.0925) and results.timing.model_server_calls == 1
    tracking = TrackingConfig(
        enabled=True,
        uri=fresh_store(tmp_path_factory, tmp_path / "mlflow.db"),
        experiment="koderz-test",
        artifact_location=str(tmp_path / "artifacts"),
    )
    run_id = log_run_folder(outcome.folder, tracking)
    assert run_id is not None
    metrics = mlflow.MlflowClient(tracking.uri).get_run(run_id).data.metrics
    assert metrics[Metric.PREFILL_IGNORED] == 1 and metrics[Metric.PREFILL_CONTINUED] == 1.0
    assert metrics[f"{Prefix.TIMING}model_server"] == results.timing.model_server
    assert metrics[f"{Prefix.TIMING}model_server_calls"] == 1


def test_stepped_metrics_follow_finishing_order_and_iterations(logged, folder) -> None:
    client, run, _ = logged
    records = RunFolder(folder).records()
    history = client.get_metric_history(run.info.run_id, "cumulative_pass_rate")
    passed = [r.passed for r in records]
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == [
        sum(passed[:i]) / i for i in range(1, len(records) + 1)
    ]
    within = client.get_metric_history(run.info.run_id, "solved_within_iterations")
    assert [m.value for m in sorted(within, key=lambda m: m.step)] == [0.25, 0.75]


def test_every_column_of_the_problem_table_equals_results_jsonl(logged, folder) -> None:
    client, run, _ = logged
    table = client.load_table(run.info.experiment_id, "problems.json", run_ids=[run.info.run_id])
    records = RunFolder(folder).records()
    assert list(table["task_id"]) == [r.task_id for r in records]
    for column, value in {
        "passed": lambda r: r.passed,
        "status": lambda r: r.status.value,
        "attempts": lambda r: r.attempts,
        "tests_passed": lambda r: r.tests_passed,
        "tests_total": lambda r: r.tests_total,
        "duration": lambda r: r.duration,
        "cost_usd": lambda r: r.cost.total,
        "input_tokens": lambda r: r.tokens.input,
        "output_tokens": lambda r: r.tokens.output,
    }.items():
        assert list(table[column]) == pytest.approx([value(r) for r in records]), column  # floats via JSON
    assert [None if s != s else s for s in table["solved_at"]] == [r.solved_at for r in records]  # NaN = None


def test_the_live_problem_table_is_appended_in_steps_and_holds_every_row_at_the_end(
    folder, tmp_path, tmp_path_factory, monkeypatch
) -> None:
    """MLflow rewrites the whole table on each append: the first sync appends its rows, later ones
    only after ``TABLE_SECONDS`` (here never) and once the rows to add are ``TABLE_GROWTH`` of those
    it holds; ``log_rows()`` (the end of a run) adds every logged row left."""
    monkeypatch.setattr(run_logger, "TABLE_SECONDS", float("inf"))
    tracking = TrackingConfig(
        enabled=True,
        uri=fresh_store(tmp_path_factory, tmp_path / "mlflow.db"),
        experiment="koderz-table",
        artifact_location=str(tmp_path / "artifacts"),
        traces=False,
    )
    order = [r.task_id for r in RunFolder(folder).records()]
    with RunLogger(RunFolder(folder), tracking) as logger:
        run_id = logger.open()
        progress = logger.progress
        assert progress is not None

        def rows() -> list[str]:
            table = logger.client.load_table(progress.experiment_id, "problems.json", run_ids=[run_id])
            return list(table["task_id"])

        assert logger.sync(1) == 1 and rows() == order[:1]
        assert logger.sync(2) == 2 and rows() == order[:1]
        logger.log_rows(at_least=3)  # two rows to add: fewer than asked
        assert rows() == order[:1]
        logger.log_rows()
        assert rows() == order[:3]
        logger.log_rows()  # nothing left to add: no append
        assert rows() == order[:3]


def test_artifacts_and_figures_are_logged(logged) -> None:
    client, run, _ = logged
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"results.json", "samples.jsonl", "timing.json", "config.yaml", "figures"} <= names  # no Hydra: no log
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert figures == {"figures/pass_rate_by_iteration.png", "figures/time_by_category.png"}  # it cost nothing


class FigureRecorder:
    """A fake MLflow client that only records the names of the figures logged to it."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def log_figure(self, run_id: str, figure: object, name: str) -> None:
        self.names.append(name)


@pytest.mark.parametrize(
    ("solved_within", "cost", "expected"),
    [
        ([1.0], 0.0, ["time_by_category"]),  # zero-shot on a free model: one point, no cost
        ([0.5, 0.75], 0.0, ["pass_rate_by_iteration", "time_by_category"]),
        ([1.0], 0.25, ["time_by_category", "cost_vs_pass_rate"]),
    ],
)
def test_only_figures_that_show_something_are_drawn(folder, solved_within, cost, expected) -> None:
    results = RunFolder(folder).read_results()
    summary = results.summary.model_copy(
        update={"solved_within": solved_within, "cost": results.summary.cost.model_copy(update={"total": cost})}
    )
    recorder = FigureRecorder()
    log_figures(recorder, "run", results.model_copy(update={"summary": summary}))
    assert recorder.names == [f"figures/{name}.png" for name in expected]


def test_one_trace_per_problem_with_its_spans(logged, folder) -> None:
    import mlflow

    _, run, _ = logged
    traces = mlflow.search_traces(locations=[run.info.experiment_id], run_id=run.info.run_id, return_type="list")
    by_task = {t.info.tags["koderz.task_id"]: t for t in traces}
    assert set(by_task) == set(TASKS) and len(traces) == len(TASKS)  # linked to the run, one per problem
    failed = by_task[TASKS[2]]
    assert failed.info.state.value == "ERROR"
    names = [s.name for s in failed.data.spans]
    assert names.count("iteration_test #1") == 1 and names.count("iteration_test #2") == 1
    test = next(s for s in failed.data.spans if s.name == "iteration_test #2")
    assert test.outputs["status"] == "failed"
    assert by_task[TASKS[0]].info.state.value == "OK"


def test_unreachable_server_warns_once_with_a_command_that_works_as_printed(folder, caplog, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    with caplog.at_level(logging.WARNING):
        assert log_run_folder(folder, TrackingConfig(enabled=True, uri="http://127.0.0.1:1")) is None
    ours = [r for r in caplog.records if r.name.startswith("koderz")]
    assert len(ours) == 1
    message = ours[0].getMessage()
    assert f"python -m koderz.tracking log {folder} --uri sqlite:///outputs/mlflow.db" in message
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("kind", ["directory", "garbage"])
def test_a_broken_store_warns_once(folder, tmp_path, caplog, kind) -> None:
    store = tmp_path / "mlflow.db"
    if kind == "directory":
        store.mkdir()
    else:
        store.write_bytes(b"not a database" * 100)
    with caplog.at_level(logging.WARNING):
        assert log_run_folder(folder, TrackingConfig(enabled=True, uri=f"sqlite:///{store}")) is None
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in warnings] == ["koderz.tracking.logger"]
    assert "broken MLflow store" in warnings[0].getMessage()


def test_flatten_params() -> None:
    assert flatten_params({"a": {"b": {"c": None}}, "d": [], "e": "x" * 7000}) == {
        "a.b.c": "null",
        "d": "[]",
        "e": "x" * 6000,
    }


def test_tracking_log_cli_uploads_a_folder_and_refuses_a_non_folder(folder, tmp_path, tmp_path_factory) -> None:
    import mlflow

    uri = fresh_store(tmp_path_factory, tmp_path / "cli.db")
    cmd = [sys.executable, "-m", "koderz.tracking", "log"]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}, "PYTHONPATH": str(REPO)}
    bad = subprocess.run([*cmd, str(tmp_path / "nope")], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nope'}: not a koderz run folder (no config.yaml and results.jsonl)"
    ]
    done = subprocess.run(
        [*cmd, str(folder), "--uri", uri, "--experiment", "later"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    run = mlflow.MlflowClient(uri).get_run(done.stdout.strip())
    assert run.data.metrics["pass_rate"] == 0.75
    assert (tmp_path / "outputs" / "mlartifacts").is_dir()  # default root, under cwd


def test_memory_operations_are_events_of_the_root_span_not_spans() -> None:
    from koderz.records import Span, TraceRecord
    from koderz.tracking.traces import build_trace
    from koderz.vocab import Mode, Phase, Status

    t = 1_800_000_000.0
    trace = TraceRecord(
        task_id="HumanEval/0",
        mode=Mode.ZERO_SHOT,
        passed=True,
        status=Status.PASSED,
        start=t,
        end=t + 1,
        spans=[
            Span(name=Phase.MEMORY_READ, start=t, end=t + 0.001),
            Span(name=Phase.SPEC, start=t + 0.01, end=t + 0.2),
            Span(name=Phase.MEMORY_WRITE, start=t + 0.2, end=t + 0.2005),
            Span(name=Phase.TEST, start=t + 0.3, end=t + 0.9, iteration=1),
        ],
    )
    _, spans = build_trace(trace, None, run_key="run", finished_at=t + 1)
    assert [s.name for s in spans] == ["HumanEval/0", "spec_generation", "iteration_test #1"]
    events = spans[0].events
    assert [e.name for e in events] == ["cortex_recall", "cortex_remember"]
    assert events[1].timestamp == int((t + 0.2) * 1e9) and events[1].attributes["duration_ms"] == 0.5
