"""BigCodeBench and LiveCodeBench end to end: ``python -m koderz`` with ``model=replay`` on koderz's
own files in each format, through the evaluator seam and the real sandbox; each replayed sample's
verdict against its known kind (right or wrong), the per-test outcomes on the records, the export
in each benchmark's format, and bad input (one line, exit 2, nothing left behind)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from koderz.config import TrackingConfig
from koderz.datasets.bigcodebench import reference_program
from koderz.evalplus_sanitize import bigcodebench_sanitize
from koderz.problems import load_benchmark
from koderz.prompts import PromptStyle, attempt_messages
from koderz.records import RunFolder
from koderz.tracking.logger import log_run_folder
from koderz.vocab import Mode, Protocol, Status
from tests.conftest import run_job
from tests.support.bench_files import BCB_FILE, LCB_FILE, Sample, bcb_config, bcb_samples, lcb_samples
from tests.support.env import clean_env, run_koderz
from tests.support.fakes.scripted_server import Rules, ScriptedServer, fenced
from tests.support.mlflow_runs import fresh_store, global_tracking_uri

QUIET = ("tracking=off", "cortex=off")
BCB_TASKS = ["KoderzBCB/0", "KoderzBCB/1", "KoderzBCB/2"]
LCB_TASKS = ["kz0", "kz16"]  # stdin; functional


def _replay(path: Path, samples: list[Sample]) -> Path:
    path.write_text("".join(json.dumps({"task_id": s.task_id, "solution": s.solution}) + "\n" for s in samples))
    return path


def _run(cwd: Path, *args: str) -> RunFolder:
    done = run_koderz(cwd, *args, *QUIET, env=clean_env())
    assert done.returncode == 0, done.stderr[-2000:]
    [folder] = (cwd / "outputs" / "runs").glob("*/*")
    return RunFolder.existing(folder)


def _export(cwd: Path, benchmark: str, folder: RunFolder) -> Path:
    """``python -m koderz.export BENCHMARK RUN_FOLDER``; the file it wrote."""
    exported = subprocess.run(
        [sys.executable, "-m", "koderz.export", benchmark, str(folder.path)],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert exported.returncode == 0, exported.stderr
    return Path(exported.stdout.strip().splitlines()[-1])


def test_bigcodebench_run_judges_each_sample_as_its_kind_and_exports_samples(tmp_path: Path) -> None:
    samples = [s for s in bcb_samples() if s.task_id in BCB_TASKS]
    replay = _replay(tmp_path / "replay.jsonl", samples)
    folder = _run(
        tmp_path,
        "dataset=bigcodebench",
        f"dataset.path={BCB_FILE}",
        "model=replay",
        f"model.samples={replay}",
        f"problems=[{','.join(BCB_TASKS)}]",
        "n_samples=3",
    )
    attempts = folder.attempts()
    assert [(a.task_id, a.passed) for a in attempts] == [(s.task_id, s.should_pass) for s in samples]
    for attempt, sample in zip(attempts, samples, strict=True):
        assert attempt.tests_total >= 2 and attempt.mechanism is not None
        if sample.should_pass:
            assert attempt.status is Status.PASSED and attempt.tests_passed == attempt.tests_total
        else:  # the first failing test, by name, and why
            assert attempt.failing_input is not None and attempt.failing_input.startswith("test")
            assert attempt.error and attempt.tests_passed < attempt.tests_total
        if sample.variant == "wrong":
            assert attempt.status is Status.FAILED and "AssertionError" in (attempt.error or "")
            # every failing test by name on the record, the first failing one first
            assert attempt.failed_tests[0] == attempt.failing_input
            assert len(attempt.failed_tests) == attempt.tests_total - attempt.tests_passed
    summary = folder.read_results().summary
    assert summary.release is not None and summary.release.startswith("sha256:")
    assert summary.problems == 3 and summary.skipped == {}
    exported = _export(tmp_path, "bigcodebench", folder)
    rows = [json.loads(line) for line in exported.read_text().splitlines()]
    assert [(r["task_id"], r["solution"]) for r in rows] == [(s.task_id, s.solution) for s in samples]


def test_livecodebench_run_judges_stdin_and_functional_samples_and_exports_code_lists(tmp_path: Path) -> None:
    samples = [s for s in lcb_samples() if s.task_id in LCB_TASKS]
    replay = _replay(tmp_path / "replay.jsonl", samples)
    folder = _run(
        tmp_path,
        "experiment=livecodebench",
        f"dataset.path={LCB_FILE}",
        "model=replay",
        f"model.samples={replay}",
        f"problems=[{','.join(LCB_TASKS)}]",
        f"n_samples={max(sum(s.task_id == t for s in samples) for t in LCB_TASKS)}",
    )
    attempts = folder.attempts()
    assert [(a.task_id, a.passed) for a in attempts] == [(s.task_id, s.should_pass) for s in samples]
    for attempt, sample in zip(attempts, samples, strict=True):
        if sample.variant == "wrong":  # the failing test's input, the expected and the actual output
            assert attempt.status is Status.FAILED
            assert attempt.failing_input and attempt.expected is not None and attempt.got is not None
            assert attempt.expected != attempt.got
            assert attempt.failed_tests and all(t.isdigit() for t in attempt.failed_tests)  # test indices
    assert folder.read_results().summary.prompt == "benchmark"
    exported = _export(tmp_path, "livecodebench", folder)
    rows = json.loads(exported.read_text())
    assert [r["question_id"] for r in rows] == LCB_TASKS
    assert [c for r in rows for c in r["code_list"]] == [s.solution for s in samples]


def _iterative_on_bcb0(replay: Path) -> tuple[str, ...]:
    """Overrides of a two-iteration run on KoderzBCB/0 replaying ``replay`` (no spec, no reviews)."""
    return (
        "dataset=bigcodebench",
        f"dataset.path={BCB_FILE}",
        "model=replay",
        f"model.samples={replay}",
        "problems=[KoderzBCB/0]",
        "mode=iterative",
        "max_iterations=2",
        "checkpoints.enabled=false",
        "spec.enabled=false",
    )


def test_iterative_feedback_names_the_failing_test_and_its_message(tmp_path: Path) -> None:
    by_kind = {s.variant: s for s in bcb_samples() if s.task_id == "KoderzBCB/0"}
    replay = _replay(tmp_path / "replay.jsonl", [by_kind["wrong"], by_kind["canonical"]])
    folder = _run(
        tmp_path,
        *_iterative_on_bcb0(replay),
    )
    [record] = folder.records()
    assert record.mode is Mode.ITERATIVE and record.passed and record.solved_at == 2
    first = folder.attempts()[0]
    prompts = [span.call.prompt for trace in folder.traces() for span in trace.spans if span.call is not None]
    assert first.failing_input and f"Failing input: {first.failing_input}" in prompts[1]
    assert "AssertionError" in prompts[1]


def test_the_time_limit_is_a_config_key_recorded_in_the_run(tmp_path: Path) -> None:
    """``dataset.time_limit=2``: a suite that loops forever is stopped after its limit (bigcodebench's
    240 s otherwise), and the run's config.yaml records the limit."""
    loop = next(s for s in bcb_samples() if s.variant == "loop")
    replay = _replay(tmp_path / "replay.jsonl", [loop])
    folder = _run(
        tmp_path,
        "dataset=bigcodebench",
        f"dataset.path={BCB_FILE}",
        "dataset.time_limit=2",
        "model=replay",
        f"model.samples={replay}",
        f"problems=[{loop.task_id}]",
    )
    [attempt] = folder.attempts()
    assert attempt.status is Status.FAILED and "Timed out" in (attempt.error or "")  # as bigcodebench reports it
    assert yaml.safe_load((folder.path / "config.yaml").read_text())["dataset"]["time_limit"] == 2


def _bad(tmp_path: Path, *args: str) -> str:
    done = run_koderz(tmp_path, "model=reference", *args, *QUIET, env=clean_env())
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert list(tmp_path.iterdir()) == [], "nothing left behind"
    return done.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("dataset=bigcodebench", "dataset.path=/nonexistent/tasks.jsonl"), "dataset.path=/nonexistent/tasks.jsonl"),
        (("dataset=bigcodebench", "dataset.subset=medium"), "dataset.subset=medium"),
        (("dataset=bigcodebench", "dataset.split=chat"), "dataset.split=chat"),
        (("dataset=livecodebench", "dataset.date_from=2024-13-01"), "dataset.date_from=2024-13-01"),
        (("dataset=livecodebench", f"dataset.path={LCB_FILE}", "dataset.date_from=2031-01-01"), "date window"),
        (("dataset=bigcodebench", "dataset.libraries=/nonexistent/venv"), "dataset.libraries=/nonexistent/venv"),
        (("dataset=bigcodebench", "dataset.time_limit=0"), "dataset.time_limit=0"),
        (("dataset=bigcodebench", "dataset.time_limit=-5"), "dataset.time_limit=-5"),
    ],
)
def test_bad_benchmark_input_is_one_line_exit_2_and_leaves_nothing(tmp_path: Path, args: tuple[str, ...], needle):
    assert needle in _bad(tmp_path, *args)


def test_a_file_in_another_format_is_one_line(tmp_path: Path) -> None:
    other = tmp_path.parent / f"{tmp_path.name}-other.jsonl"
    other.write_text(json.dumps({"task_id": "x", "prompt": "def f(): pass"}) + "\n")
    try:
        assert "lacks" in _bad(tmp_path, "dataset=bigcodebench", f"dataset.path={other}")
    finally:
        other.unlink()


def _with_missing_library(path: Path) -> Path:
    rows = [json.loads(line) for line in BCB_FILE.read_text().splitlines()][:2]
    rows[1]["libs"] = json.dumps(["koderz_no_such_library"])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_tasks_whose_libraries_are_missing_are_named_before_any_model_call(tmp_path: Path) -> None:
    tasks = _with_missing_library(tmp_path.parent / f"{tmp_path.name}-tasks.jsonl")
    try:
        line = _bad(tmp_path, "dataset=bigcodebench", f"dataset.path={tasks}")
    finally:
        tasks.unlink()
    assert "KoderzBCB/1 (koderz_no_such_library)" in line and "dataset.skip_unrunnable=true" in line


def test_tasks_whose_libraries_are_missing_are_skipped_with_their_reason_on_request(tmp_path: Path) -> None:
    tasks = _with_missing_library(tmp_path / "tasks.jsonl")
    canonical = [s for s in bcb_samples() if s.variant == "canonical" and s.task_id in BCB_TASKS[:2]]
    replay = _replay(tmp_path / "replay.jsonl", canonical)
    folder = _run(
        tmp_path,
        "dataset=bigcodebench",
        f"dataset.path={tasks}",
        "dataset.skip_unrunnable=true",
        "model=replay",
        f"model.samples={replay}",
    )
    summary = folder.read_results().summary
    assert summary.skipped == {"KoderzBCB/1": "library environment lacks koderz_no_such_library"}
    assert [r.task_id for r in folder.records()] == ["KoderzBCB/0"] and summary.passed == 1


async def test_the_bigcodebench_preset_sends_its_prompt_greedy_and_reads_the_answer_as_it_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scripted server (a fake model, named as one) answers with prose around the canonical
    solution and a trailing call: bigcodebench's sanitize keeps the solution, the suite passes."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-scripted")
    monkeypatch.chdir(tmp_path)
    problem = next(p for p in load_benchmark(bcb_config()) if p.task_id == "KoderzBCB/0")
    solution = reference_program(problem)
    answer = f"Here is the script:\n```python\n{solution}\nprint(task_func(['a', 'b', 'a']))\n```\nDone."
    async with ScriptedServer(Rules([], default=answer)) as server:
        outcome = await run_job(
            tmp_path / "run",
            "experiment=bigcodebench",
            f"dataset.path={BCB_FILE}",
            "model=gpt-4o-mini",
            f"model.base_url={server.openai_url}",
            "problems=[KoderzBCB/0]",
            *QUIET,
            "cache=false",
            "sandbox.max_processes=1",
        )
        [request] = server.chat_requests
    assert request.messages == attempt_messages(problem, PromptStyle(Protocol.BENCHMARK, cot=False))
    body = request.body or {}
    assert (body["temperature"], body["max_tokens"]) == (0.0, 1280)
    [attempt] = RunFolder(tmp_path / "run").attempts()
    assert attempt.program == bigcodebench_sanitize(answer, "task_func") and "print(" not in attempt.program
    assert attempt.passed and outcome.summary.prompt == "benchmark" and outcome.summary.passed == 1


async def test_mlflow_gets_the_release_and_the_failing_test_of_each_attempt(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import mlflow

    by_kind = {s.variant: s for s in bcb_samples() if s.task_id == "KoderzBCB/0"}
    replay = _replay(tmp_path / "replay.jsonl", [by_kind["wrong"], by_kind["canonical"]])
    folder = tmp_path / "run"
    await run_job(
        folder,
        *_iterative_on_bcb0(replay),
        *QUIET,
    )
    tracking = TrackingConfig(
        enabled=True,
        uri=fresh_store(tmp_path_factory, tmp_path / "mlflow.db"),
        experiment="koderz-bench",
        artifact_location=str(tmp_path / "artifacts"),
    )
    run_id = log_run_folder(folder, tracking)
    assert run_id is not None and tracking.uri is not None
    run = mlflow.MlflowClient(tracking.uri).get_run(run_id)
    release = RunFolder(folder).read_results().summary.release
    assert release is not None and run.data.tags["koderz.dataset_release"] == release
    with global_tracking_uri(tracking.uri):
        [trace] = mlflow.search_traces(locations=[run.info.experiment_id], run_id=run_id, return_type="list")
    first = next(s for s in trace.data.spans if s.name == "iteration_test #1")
    failing = RunFolder(folder).attempts()[0].failing_input
    assert failing is not None and failing.startswith("test")
    assert first.outputs["failing_input"] == failing and first.outputs["status"] == "failed"


async def test_a_cached_benchmark_run_reuses_verdicts_and_another_task_file_or_split_is_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scripted server (a fake model, named as one) answers the canonical solution; ``cache=true``
    (it is on loopback). The same run again is served from the cache; a changed task file or
    another split is not."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-scripted")
    monkeypatch.chdir(tmp_path)
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_bytes(BCB_FILE.read_bytes())
    problem = next(p for p in load_benchmark(bcb_config()) if p.task_id == "KoderzBCB/0")
    async with ScriptedServer(Rules([], default=fenced(reference_program(problem)))) as server:
        args = (
            "dataset=bigcodebench",
            f"dataset.path={tasks}",
            "model=gpt-4o-mini",
            f"model.base_url={server.openai_url}",
            "spec.enabled=false",
            "problems=[KoderzBCB/0]",
            "cache=true",
            *QUIET,
        )
        first = await run_job(tmp_path / "first", *args)
        again = await run_job(tmp_path / "again", *args)
        assert len(server.chat_requests) == 1
        rows = [json.loads(line) for line in tasks.read_text().splitlines()]
        rows[1]["test"] += "\n"  # another task's tests: the tasks loaded differ
        tasks.write_text("".join(json.dumps(row) + "\n" for row in rows))
        changed = await run_job(tmp_path / "changed", *args)
        assert len(server.chat_requests) == 2
        instruct = await run_job(tmp_path / "instruct", *args, "dataset.split=instruct")
        assert len(server.chat_requests) == 3
    assert [o.summary.cached for o in (first, again, changed, instruct)] == [0, 1, 0, 0]
    assert first.summary.passed == again.summary.passed == 1
    [record] = RunFolder(tmp_path / "again").records()
    assert record.cached and record.passed and record.tests_total >= 2


async def test_a_cached_livecodebench_run_is_a_miss_in_another_date_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As above (a scripted server, a fake model): the same window is served from the cache,
    another window is not, though it still holds the task."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-scripted")
    monkeypatch.chdir(tmp_path)
    right = next(s for s in lcb_samples() if s.task_id == "kz0" and s.should_pass)
    async with ScriptedServer(Rules([], default=fenced(right.solution))) as server:
        args = (
            "dataset=livecodebench",
            f"dataset.path={LCB_FILE}",
            "model=gpt-4o-mini",
            f"model.base_url={server.openai_url}",
            "spec.enabled=false",
            "problems=[kz0]",
            "cache=true",
            *QUIET,
        )
        first = await run_job(tmp_path / "first", *args)
        again = await run_job(tmp_path / "again", *args)
        assert len(server.chat_requests) == 1
        window = await run_job(tmp_path / "window", *args, "dataset.date_to=2023-05-01")
        assert len(server.chat_requests) == 2
    assert [o.summary.cached for o in (first, again, window)] == [0, 1, 0]
    assert first.summary.passed == again.summary.passed == window.summary.passed == 1
