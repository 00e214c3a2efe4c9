"""The live progress line: a rate over verdicts only, the unanswered named, no ETA once problems
come back unanswered, and a first line before any problem finishes."""

from __future__ import annotations

import io

from koderz.progress import Progress
from koderz.records import ProblemRecord
from koderz.vocab import Mode, Status


def record(task: str, status: Status) -> ProblemRecord:
    return ProblemRecord(task_id=task, mode=Mode.ZERO_SHOT, status=status, passed=status == Status.PASSED)


def test_the_rate_counts_verdicts_and_the_unanswered_are_named_without_an_eta() -> None:
    progress = Progress(total=10, stream=io.StringIO())
    for task, status in [("a", Status.PASSED), ("b", Status.FAILED), ("c", Status.PASSED)]:
        progress.update(record(task, status))
    assert progress.line().startswith("[3/10] passed 2 of 3 verdicts (66.7%)")
    assert "ETA" in progress.line()

    progress.update(record("d", Status.MODEL_ERROR))

    assert progress.line() == "[4/10] passed 2 of 3 verdicts (66.7%), 1 unanswered"


def test_a_finished_run_shows_no_eta_and_resumed_records_count_but_set_no_pace() -> None:
    progress = Progress(total=2, stream=io.StringIO())
    progress.update(record("a", Status.PASSED), resumed=True)
    assert "ETA" not in progress.line()  # nothing fresh finished: no pace to extrapolate
    progress.update(record("b", Status.FAILED))
    assert progress.line() == "[2/2] passed 1 of 2 verdicts (50.0%)"


def test_begin_says_what_runs_before_the_first_problem_finishes() -> None:
    stream = io.StringIO()
    stream.isatty = lambda: True  # type: ignore[method-assign]
    progress = Progress(total=164, stream=stream)

    progress.begin()

    assert stream.getvalue() == "[0/164] passed 0 of 0 verdicts (0.0%)"
