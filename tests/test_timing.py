"""The timing record's numbers add up: alone, when problems overlap, and across resumed parts."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from koderz.errors import ConfigError
from koderz.records import RunFolder, RunPart, Span, TraceRecord
from koderz.timing import (
    RunClock,
    build_timing,
    export_report,
    format_report,
    interpreter_start,
    max_overlap,
    process_start,
    union_length,
)
from koderz.vocab import Category, Mode, PartStatus, Phase, Status

T0 = 1_700_000_000.0
REPO = Path(__file__).resolve().parents[1]


def span(name: str, start: float, end: float) -> Span:
    return Span(name=Phase(name), start=T0 + start, end=T0 + end)


def trace(task: str, start: float, end: float, *phases: tuple[str, float, float]) -> TraceRecord:
    return TraceRecord(
        task_id=task,
        mode=Mode.ITERATIVE,
        passed=True,
        status=Status.PASSED,
        start=T0 + start,
        end=T0 + end,
        spans=[span(*p) for p in phases],
    )


def part(start: float, duration: float) -> RunPart:
    return RunPart(started=T0 + start, ended=T0 + start + duration, duration=duration, status=PartStatus.FINISHED)


def problem(task: str, offset: float) -> TraceRecord:
    """A problem lasting 10 s from ``offset`` with a spec, two attempts, a review and memory writes."""
    t = offset
    return trace(
        task,
        t,
        t + 10,
        ("spec_generation", t + 0.0, t + 1.0),
        ("iteration_generate", t + 1.0, t + 4.0),
        ("iteration_test", t + 4.0, t + 4.5),
        ("cortex_remember", t + 4.5, t + 4.6),
        ("iteration_generate", t + 4.6, t + 7.6),
        ("iteration_test", t + 7.6, t + 8.1),
        ("checkpoint_review", t + 8.1, t + 9.1),
    )


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("cortex_remember", "cortex"),
        ("cortex_start_session", "cortex"),
        ("spec_generation", "spec"),
        ("iteration_generate", "iteration"),
        ("iteration_test", "test"),  # the sandbox has its own category (it was counted as iteration)
        ("checkpoint_review", "checkpoint"),
        ("launch", "startup"),
        ("tracking_flush", "tracking"),
        ("cortex_close", "shutdown"),
    ],
)
def test_each_phase_has_one_category(name: str, category: str) -> None:
    assert Phase(name).category == category


def test_sequential_problems_add_up_and_overhead_is_what_no_phase_covers() -> None:
    timing = build_timing([part(0, 25)], [span("launch", 0, 2)], [problem("A", 2), problem("B", 12)])
    assert timing.total_duration == 25
    assert timing.tracked_wall == pytest.approx(2 + 2 * 9.1)
    assert timing.overhead == pytest.approx(25 - timing.tracked_wall)
    assert timing.model_busy == pytest.approx(2 * (1 + 3 + 3 + 1))
    assert timing.sandbox_busy == pytest.approx(2 * 1.0)
    assert timing.categories[Category.ITERATION].busy == pytest.approx(12)
    assert timing.categories[Category.TEST].count == 4
    assert timing.max_in_flight == 1 and timing.mean_in_flight == pytest.approx(20 / 25)
    assert set(timing.per_problem) == {"A", "B"}


def test_overlapping_problems_keep_busy_and_wall_apart() -> None:
    timing = build_timing([part(0, 12)], [], [problem("A", 1), problem("B", 1), problem("C", 2)])
    iteration = timing.categories[Category.ITERATION]
    assert iteration.busy == pytest.approx(18) and iteration.wall < iteration.busy
    assert iteration.mean_in_flight == pytest.approx(iteration.busy / iteration.wall)
    assert timing.max_in_flight == 3
    assert timing.overhead >= 0 and timing.tracked_wall <= timing.total_duration
    assert all(p.end - p.start <= timing.total_duration for p in timing.phases)


def test_resumed_parts_are_laid_end_to_end() -> None:
    first, second = part(0, 10), part(100, 5)  # a pause of 90 s between the parts is not run time
    timing = build_timing(
        [first, second],
        [span("launch", 0, 1), span("launch", 100, 100.5)],
        [problem("A", 0), trace("B", 101, 104, ("iteration_test", 101, 102))],
    )
    assert timing.total_duration == 15 and timing.parts == [10, 5]
    b = next(p for p in timing.phases if p.task_id == "B")
    assert b.start == pytest.approx(10 + 1) and b.end == pytest.approx(10 + 2)
    assert timing.per_problem["A"].duration == pytest.approx(10)  # clamped to its part


def test_interval_helpers() -> None:
    assert union_length([(0, 2), (1, 3), (5, 6)]) == 4
    assert union_length([]) == 0
    assert max_overlap([(0, 2), (1, 3), (2, 4)]) == 2  # touching ends do not overlap
    assert max_overlap([]) == 0


def test_empty_run() -> None:
    timing = build_timing([part(0, 1)], [], [])
    assert (timing.problem_count, timing.tracked_wall, timing.overhead, timing.max_in_flight) == (0, 0, 1, 0)


def test_the_report_answers_model_versus_sandbox() -> None:
    text = format_report(build_timing([part(0, 25)], [span("launch", 0, 2)], [problem("A", 2)]))
    for heading in ("TIMING BREAKDOWN", "Total Duration: 25.00s", "Overhead:", "By Category:", "Top 5 Phase Types"):
        assert heading in text
    assert "Model calls:    8.00s busy   Sandbox: 1.00s busy" in text


def test_run_clock_records_a_phase_even_when_it_raises() -> None:
    clock = RunClock()
    before = time.time()
    with pytest.raises(RuntimeError), clock.phase(Phase.PREFLIGHT):
        raise RuntimeError("boom")
    (recorded,) = clock.spans
    assert recorded.name == "preflight" and before <= recorded.start <= recorded.end <= time.time()


def test_process_start_is_before_now() -> None:
    assert process_start() <= time.time()


def test_export_round_trips_and_an_unwritable_path_is_a_config_error(tmp_path) -> None:
    timing = build_timing([part(0, 25)], [], [problem("A", 2)])
    path = export_report(timing, tmp_path / "deep" / "timing.json")
    assert json.loads(path.read_text()) == json.loads(timing.model_dump_json())
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match=r"timing\.export"):
        export_report(timing, blocker / "timing.json")


def test_interpreter_start_is_before_now_and_not_before_the_process() -> None:
    started = interpreter_start()
    assert process_start() - 1.0 <= started <= time.time()


def koderz_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a ``python -m koderz`` child: this checkout first on the path."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def parts_of(folder: Path) -> list[RunPart]:
    state = RunFolder(folder).read_state()
    assert state is not None
    return state.parts


def test_each_sweep_job_is_timed_from_its_own_start(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "koderz",
            "-m",
            "end=1,2,3",
            "tracking=off",
            "cortex=off",
            "cache=false",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
        env=koderz_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    jobs = sorted((p for p in sweep.iterdir() if p.is_dir()), key=lambda p: int(p.name.split("_", 1)[0]))
    assert len(jobs) == 3
    previous_end = 0.0
    for job in jobs:
        (part,) = parts_of(job)
        assert part.ended is not None
        assert part.started >= previous_end  # no job counts the jobs before it
        summary = RunFolder(job).read_results().summary
        assert summary.duration == pytest.approx(part.ended - part.started)
        previous_end = part.ended
    first, last = parts_of(jobs[0])[0], parts_of(jobs[-1])[0]
    assert last.ended is not None
    total = sum(RunFolder(job).read_results().summary.duration for job in jobs)
    assert total <= last.ended - first.started  # the jobs' durations do not overlap


def test_a_shell_that_execs_koderz_after_a_pause_does_not_count_the_pause(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    command = (
        f"sleep 2 && exec {shlex.quote(sys.executable)} -m koderz end=1 tracking=off cortex=off cache=false "
        f"hydra.run.dir={shlex.quote(str(folder))}"
    )
    before = time.time()
    done = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, env=koderz_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (part,) = parts_of(folder)
    # the 2 s sleep ran before Python and is not the run's time; the shell's own start-up and fork
    # (milliseconds of CPU and run-queue wait) are counted, so the start lands just before 2 s on
    # a loaded machine; counting from the process's start would put it at ~0 s
    assert part.started >= before + 1.0
    assert part.ended is not None
    assert RunFolder(folder).read_results().summary.duration == pytest.approx(part.ended - part.started)


@pytest.mark.slow
def test_mlflow_duration_is_the_jobs_wall_time(tmp_path: Path) -> None:
    """Measured outside: the wall time of ``python -m koderz`` with MLflow tracking, against the
    ``duration_s`` its MLflow run holds (the final flush and the interpreter's exit included)."""
    import mlflow

    folder, uri = tmp_path / "run", f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, "-m", "koderz", "end=3", "cortex=off", "cache=false", f"hydra.run.dir={folder}"]
    command += [f"tracking.uri={uri}", f"tracking.artifact_location={tmp_path / 'artifacts'}"]
    began = time.time()
    done = subprocess.run(command, cwd=tmp_path, env=koderz_env(tmp_path), capture_output=True, text=True, timeout=600)
    wall = time.time() - began
    assert done.returncode == 0, done.stderr[-2000:]
    progress = RunFolder(folder).read_tracking()
    assert progress is not None and progress.finished
    logged = mlflow.MlflowClient(uri).get_run(progress.mlflow_run_id).data.metrics["duration_s"]
    assert logged == pytest.approx(wall, rel=0.05)
    assert logged == pytest.approx(RunFolder(folder).read_results().summary.duration, rel=0.05)


def test_a_span_written_before_spans_were_typed_reads_as_typed() -> None:
    """traces.jsonl of older runs kept a span's details as string-keyed ``attributes``."""
    call = Span.model_validate(
        {
            "name": "iteration_generate",
            "start": T0,
            "end": T0 + 2,
            "attributes": {"model": "m", "iteration": 2, "prompt": "p", "answer": "a", "server_seconds": 1.5},
        }
    )
    assert (call.name, call.iteration) == (Phase.GENERATE, 2)
    assert call.call is not None and (call.call.prompt, call.call.answer, call.call.server_seconds) == ("p", "a", 1.5)
    test = Span.model_validate(
        {
            "name": "iteration_test",
            "start": T0,
            "end": T0 + 1,
            "attributes": {"iteration": 1, "status": "failed", "tests_passed": 0, "tests_total": 7, "error": None},
        }
    )
    assert test.verdict is not None and (test.verdict.status, test.verdict.tests_run) == (Status.FAILED, None)
    old = trace("A", 0, 3).model_copy(update={"spans": [call, test]})
    assert build_timing([part(0, 5)], [], [old]).model_server == 1.5  # the server's own time still counts
