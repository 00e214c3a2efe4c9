"""The timing report's numbers add up, alone and when problems overlap."""

import asyncio
import json
import math
import time

import pytest

from koderz.errors import ConfigError
from koderz.tracking.timing import (
    ProblemTimer,
    RunTiming,
    build_report,
    category_of,
    export_report,
    flat_metrics,
    format_report,
    max_overlap,
    union_length,
)


def problem(task_id, start, end, phases):
    """A finished timer with phases given as (name, start, end)."""
    timer = ProblemTimer(task_id, start=start)
    for name, s, e in phases:
        timer.add(name, s, e)
    timer.finish(end)
    return timer


def iterative_problem(task_id, offset):
    """A problem lasting 10 s from ``offset`` with every kind of phase."""
    t = offset
    return problem(
        task_id,
        t,
        t + 10.0,
        [
            ("cortex_start_session", t + 0.0, t + 0.1),
            ("spec_generation", t + 0.1, t + 1.1),
            ("iteration_generate", t + 1.1, t + 4.1),
            ("iteration_test", t + 4.1, t + 4.6),
            ("cortex_remember", t + 4.6, t + 4.7),
            ("iteration_generate", t + 4.7, t + 7.7),
            ("iteration_test", t + 7.7, t + 8.2),
            ("checkpoint_review", t + 8.2, t + 9.2),
            ("cortex_remember", t + 9.2, t + 9.3),
            ("setup_misc", t + 9.3, t + 9.4),
        ],
    )


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("cortex_remember", "cortex"),
        ("cortex_start_session", "cortex"),
        ("spec_generation", "spec"),
        ("iteration_generate", "iteration"),
        ("iteration_test", "iteration"),
        ("checkpoint_review", "checkpoint"),
        ("test_execution", "test"),
        ("unknown_phase", "other"),
    ],
)
def test_category_of_uses_the_original_prefixes(name, category):
    assert category_of(name) == category


def test_phase_context_manager_records_duration_and_epoch_times():
    timer = ProblemTimer("HumanEval/0")
    before = time.time()
    with timer.phase("iteration_generate", iteration=1):
        pass
    after = time.time()
    (record,) = timer.records
    assert record.name == "iteration_generate"
    assert record.category == "iteration"
    assert record.task_id == "HumanEval/0"
    assert record.attrs == {"iteration": 1}
    assert record.duration == record.end - record.start >= 0
    assert before - 0.01 <= record.epoch_start <= record.epoch_end <= after + 0.01


def test_phase_is_recorded_even_when_the_block_raises():
    timer = ProblemTimer("t")
    with pytest.raises(RuntimeError), timer.phase("cortex_recall"):
        raise RuntimeError("boom")
    assert [r.name for r in timer.records] == ["cortex_recall"]


def test_add_rejects_end_before_start():
    with pytest.raises(ValueError, match=r"iteration_test"):
        ProblemTimer("t").add("iteration_test", 5.0, 4.0)


def test_sequential_run_numbers_add_up():
    timer = iterative_problem("HumanEval/0", 100.0)
    report = build_report([timer], 100.0, 110.0)

    durations = [r.duration for r in timer.records]
    assert report["phase_count"] == len(durations) == 10
    assert report["total_duration"] == pytest.approx(10.0)
    assert report["tracked_duration"] == pytest.approx(math.fsum(durations))
    assert report["tracked_duration"] == pytest.approx(9.4)
    assert report["overhead"] == pytest.approx(0.6)
    # Categories add up exactly to tracked time, percentages to 100.
    cats = report["categories"]
    assert sum(c["busy"] for c in cats.values()) == report["tracked_duration"]
    assert sum(c["percent"] for c in cats.values()) == pytest.approx(100.0)
    assert sum(c["count"] for c in cats.values()) == report["phase_count"]
    assert cats["iteration"]["busy"] == pytest.approx(7.0)
    assert cats["cortex"]["busy"] == pytest.approx(0.3)
    assert cats["cortex"]["count"] == 3
    assert cats["other"]["busy"] == pytest.approx(0.1)
    # One problem: nothing overlaps, wall equals busy.
    for c in cats.values():
        assert c["wall"] == pytest.approx(c["busy"])
    assert report["concurrent"] is False
    assert report["max_in_flight"] == 1
    assert report["mean_in_flight"] == pytest.approx(1.0)

    totals = report["phase_totals"]
    assert totals["iteration_generate"] == {
        "total": pytest.approx(6.0),
        "count": 2,
        "mean": pytest.approx(3.0),
        "min": pytest.approx(3.0),
        "max": pytest.approx(3.0),
    }
    assert math.fsum(t["total"] for t in totals.values()) == pytest.approx(report["tracked_duration"])


def test_overlapping_problems_wall_is_at_most_busy_and_report_says_so():
    # Two problems running over exactly the same 10 s.
    timers = [iterative_problem("a", 0.0), iterative_problem("b", 0.0)]
    report = build_report(timers, 0.0, 10.0)

    assert report["tracked_duration"] == pytest.approx(18.8)
    assert report["overhead"] == pytest.approx(-8.8)
    assert report["mean_in_flight"] == pytest.approx(2.0)
    assert report["max_in_flight"] == 2
    assert report["concurrent"] is True
    assert report["tracked_wall"] == pytest.approx(9.4)
    cats = report["categories"]
    assert sum(c["busy"] for c in cats.values()) == report["tracked_duration"]
    for c in cats.values():
        assert c["wall"] <= c["busy"] + 1e-12
    assert cats["iteration"]["busy"] == pytest.approx(14.0)
    assert cats["iteration"]["wall"] == pytest.approx(7.0)

    assert set(report["per_problem"]) == {"a", "b"}
    for entry in report["per_problem"].values():
        assert entry["duration"] == pytest.approx(10.0)
        assert entry["finished"] is True
        assert math.fsum(entry["categories"].values()) == pytest.approx(9.4)

    text = format_report(report)
    assert "overlapped" in text
    assert "wall" in text and "busy" in text


def test_partly_overlapping_problems_give_fractional_in_flight():
    a = problem("a", 0.0, 10.0, [("iteration_generate", 0.0, 10.0)])
    b = problem("b", 5.0, 15.0, [("iteration_generate", 5.0, 15.0)])
    c = problem("c", 15.0, 20.0, [("iteration_generate", 15.0, 20.0)])
    report = build_report([a, b, c], 0.0, 20.0)
    assert report["mean_in_flight"] == pytest.approx(25.0 / 20.0)
    assert report["max_in_flight"] == 2  # b ends exactly when c starts
    assert report["categories"]["iteration"]["wall"] == pytest.approx(20.0)
    assert report["categories"]["iteration"]["busy"] == pytest.approx(25.0)


def test_run_level_phases_and_unfinished_problems_are_included():
    run = ProblemTimer(None, start=0.0)
    run.add("cortex_start_session", 0.0, 0.5)
    cancelled = ProblemTimer("late", start=1.0)
    cancelled.add("iteration_generate", 1.0, 2.0)
    report = build_report([cancelled], 0.0, 4.0, startup_phases=run.records)
    assert report["phase_count"] == 2
    assert report["phase_totals"]["cortex_start_session"]["total"] == pytest.approx(0.5)
    assert report["per_problem"]["late"] == {
        "duration": pytest.approx(3.0),
        "finished": False,
        "phase_count": 1,
        "categories": {"iteration": pytest.approx(1.0)},
    }
    assert [p["task_id"] for p in report["phases"]] == [None, "late"]


def test_interval_helpers():
    assert union_length([]) == 0.0
    assert union_length([(0, 2), (1, 3), (5, 6)]) == pytest.approx(4.0)
    assert union_length([(0, 10), (2, 3)]) == pytest.approx(10.0)
    assert max_overlap([]) == 0
    assert max_overlap([(0, 1), (1, 2)]) == 1
    assert max_overlap([(0, 3), (1, 4), (2, 5)]) == 3


def test_empty_run_reports_zeros():
    report = build_report([], 0.0, 0.0)
    assert report["tracked_duration"] == 0.0
    assert report["mean_in_flight"] == 0.0
    assert all(c["percent"] == 0.0 for c in report["categories"].values())
    assert "TIMING BREAKDOWN" in format_report(report)


def test_format_report_has_the_original_headings():
    report = build_report([iterative_problem("a", 0.0)], 0.0, 10.0)
    text = format_report(report)
    for heading in (
        "TIMING BREAKDOWN",
        "Total Duration: 10.00s",
        "Tracked Time:   9.40s",
        "Overhead:       0.60s",
        "By Category:",
        "Top 5 Phase Types:",
    ):
        assert heading in text
    top = text.split("Top 5 Phase Types:")[1].splitlines()[2:7]
    names = [line.split()[0] for line in top]
    assert names[0] == "iteration_generate"  # 6 s; then three phase types of 1 s each
    assert set(names[1:4]) == {"iteration_test", "spec_generation", "checkpoint_review"}
    assert names[4] == "cortex_remember"
    assert "overlapped" not in text
    # Categories with no phases ("test") are left out.
    assert "  test " not in text


def test_export_round_trips(tmp_path):
    timer = iterative_problem("HumanEval/1", 0.0)
    timer.records[0].attrs["iteration"] = 1
    report = build_report([timer], 0.0, 10.0)
    path = export_report(report, tmp_path / "sub" / "timing.json")
    loaded = json.loads(path.read_text())
    assert loaded == report
    for key in (
        "total_duration",
        "tracked_duration",
        "overhead",
        "phase_count",
        "categories",
        "phase_totals",
        "phases",
    ):
        assert key in loaded


def test_flat_metrics_carry_the_headline_numbers():
    report = build_report([iterative_problem("a", 0.0), iterative_problem("b", 0.0)], 0.0, 10.0)
    metrics = flat_metrics(report)
    assert metrics["timing_tracked_duration"] == report["tracked_duration"]
    assert metrics["timing_mean_in_flight"] == pytest.approx(2.0)
    assert metrics["timing_iteration_busy"] == pytest.approx(14.0)
    assert metrics["timing_iteration_wall"] == pytest.approx(7.0)
    assert "timing_test_busy" not in metrics  # no phases in that category
    assert all(isinstance(v, float) for v in metrics.values())


def test_export_to_unwritable_path_raises_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match=r"timing.export"):
        export_report({}, blocker / "timing.json")


async def test_concurrent_tasks_keep_independent_records():
    timing = RunTiming()
    with timing.run.phase("cortex_start_session"):
        pass

    async def run_problem(task_id: str, rounds: int) -> None:
        timer = timing.problem(task_id)
        try:
            for i in range(rounds):
                with timer.phase("iteration_generate", iteration=i):
                    await asyncio.sleep(0)
                with timer.phase("iteration_test", iteration=i):
                    await asyncio.sleep(0)
        finally:
            timer.finish()

    await asyncio.gather(*(run_problem(f"p{n}", n + 1) for n in range(4)))
    timing.finish()

    for n, timer in enumerate(timing.problems):
        assert {r.task_id for r in timer.records} == {f"p{n}"}
        assert len(timer.records) == 2 * (n + 1)
        assert [r.attrs["iteration"] for r in timer.records] == [i for i in range(n + 1) for _ in range(2)]
    report = timing.report()
    assert report["phase_count"] == 1 + 2 * (1 + 2 + 3 + 4)
    assert report["problem_count"] == 4
    assert report["concurrent"] is True
    assert report["max_in_flight"] == 4
    cats = report["categories"]
    assert sum(c["busy"] for c in cats.values()) == report["tracked_duration"]
    for c in cats.values():
        assert c["wall"] <= c["busy"] + 1e-12
