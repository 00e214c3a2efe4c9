"""The worker reads a run folder's JSONL files as they grow: each read takes only what was appended
since the last (``RunFolder.follow_records``), so logging n problems reads each line once."""

from __future__ import annotations

import os
from pathlib import Path

from koderz.records import ProblemRecord, RunFolder
from koderz.vocab import Mode, Status


def record(task_id: str, finished_at: float, passed: bool = True) -> ProblemRecord:
    status = Status.PASSED if passed else Status.FAILED
    return ProblemRecord(task_id=task_id, mode=Mode.ZERO_SHOT, status=status, passed=passed, finished_at=finished_at)


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def line(r: ProblemRecord) -> str:
    return r.model_dump_json() + "\n"


def test_each_read_returns_only_the_lines_appended_since_the_last(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    follower = folder.follow_records()
    assert follower.read() == ([], False)  # no results.jsonl yet
    path = tmp_path / "results.jsonl"
    append(path, line(record("a", 1.0)) + line(record("b", 2.0)))
    assert follower.read() == ([record("a", 1.0), record("b", 2.0)], False)
    assert follower.read() == ([], False)
    append(path, line(record("c", 3.0)))
    assert follower.read() == ([record("c", 3.0)], False)


def test_a_line_being_written_is_taken_once_it_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    follower = RunFolder(tmp_path).follow_records()
    whole = line(record("a", 1.0))
    append(path, whole[:10])
    assert follower.read() == ([], False)
    append(path, whole[10:])
    assert follower.read() == ([record("a", 1.0)], False)


def test_a_foreign_line_is_skipped_and_the_next_ones_are_read(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    follower = RunFolder(tmp_path).follow_records()
    append(path, "not json\n" + line(record("a", 1.0)))
    assert follower.read() == ([record("a", 1.0)], False)


def test_a_replaced_or_shortened_file_is_read_again_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    follower = RunFolder(tmp_path).follow_records()
    append(path, line(record("a", 1.0)) + line(record("b", 2.0)))
    follower.read()
    replacement = tmp_path / "new.jsonl"
    replacement.write_text(line(record("a", 1.0)))
    os.replace(replacement, path)  # how RunFolder rewrites a file (a resume keeps only some problems)
    assert follower.read() == ([record("a", 1.0)], True)
    path.write_text("")  # cut short in place
    assert follower.read() == ([], True)
    append(path, line(record("z", 9.0)))
    assert follower.read() == ([record("z", 9.0)], False)


def test_following_reads_the_same_records_as_reading_the_whole_file(tmp_path: Path) -> None:
    """A problem run again (resume) replaces its earlier record, as ``records()`` does."""
    path = tmp_path / "results.jsonl"
    folder = RunFolder(tmp_path)
    follower = folder.follow_records()
    latest: dict[tuple[Mode, str], ProblemRecord] = {}
    for r in [record("a", 1.0, passed=False), record("b", 2.0), record("a", 3.0)]:
        append(path, line(r))
        for new in follower.read()[0]:
            latest.pop(new.key, None)
            latest[new.key] = new
    assert list(latest.values()) == folder.records() == [record("b", 2.0), record("a", 3.0)]
