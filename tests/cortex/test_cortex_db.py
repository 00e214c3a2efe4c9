"""MemoryDB (SQLite + FTS5) without MCP: storage, filters, search, sessions, consolidate."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from koderz.cortex.db import MemoryDB, fts_query


def _memory(title: str, content: str = "body", category: str = "experiment", tags=(), importance=0.5, **meta):
    return {
        "title": title,
        "content": content,
        "category": category,
        "tags": list(tags),
        "importance": importance,
        "metadata": meta,
    }


@pytest.fixture
def db(tmp_path: Path):
    database = MemoryDB(tmp_path / "sub" / "m.db")
    yield database
    database.close()


def test_fts5_is_available_in_this_sqlite():
    sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE t USING fts5(a)")


def test_database_is_in_wal_mode(db):
    assert db.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_fts_query_quotes_words_so_punctuation_is_not_syntax():
    assert fts_query('HumanEval/0 "x" OR -y') == '"HumanEval" "0" "x" "OR" "y"'
    assert fts_query("  ") == ""


def test_remember_many_returns_ids_in_order_and_keeps_everything(db):
    ids = db.remember_many([_memory(f"t{i}") for i in range(300)])
    assert ids == sorted(ids) and len(set(ids)) == 300
    assert db.stats()["total_memories"] == 300


def test_tag_filter_requires_every_tag_and_category_is_exact(db):
    db.remember_many(
        [
            _memory("a", tags=["spec", "HumanEval/0"], category="spec"),
            _memory("b", tags=["spec", "HumanEval/1"], category="spec"),
            _memory("c", tags=["attempt", "HumanEval/0"], category="attempt"),
        ]
    )
    titles = lambda rows: sorted(r["title"] for r in rows)  # noqa: E731
    assert titles(db.export(["spec"], None)) == ["a", "b"]
    assert titles(db.export(["spec", "HumanEval/0"], None)) == ["a"]
    assert titles(db.export(["HumanEval/0"], "attempt")) == ["c"]
    assert titles(db.export(None, "spe")) == []
    assert titles(db.recall("", ["HumanEval/0"], None, 10, "recent")) == ["a", "c"]


def test_search_ranks_by_keywords_and_needs_every_word(db):
    db.remember_many(
        [
            _memory("sorting", "merge sort of a list"),
            _memory("parsing", "parse a list of numbers"),
            _memory("other", "nothing relevant"),
        ]
    )
    assert {r["title"] for r in db.recall("list", None, None, 10, "search")} == {"sorting", "parsing"}
    assert [r["title"] for r in db.recall("merge list", None, None, 10, "search")] == ["sorting"]
    assert db.recall("absent", None, None, 10, "search") == []


def test_recall_modes_order_and_limit(db):
    db.remember_many([_memory("low", importance=0.1), _memory("high", importance=0.9), _memory("mid")])
    assert [r["title"] for r in db.recall("", None, None, 10, "recent")] == ["mid", "high", "low"]
    assert [r["title"] for r in db.recall("", None, None, 2, "important")] == ["high", "mid"]


def test_memories_come_back_with_full_content_and_metadata(db):
    content = "x" * 100_000
    db.remember_many([_memory("big", content, tags=["t"], passed=True, tests=[3, 4])])
    (row,) = db.export(None, None)
    assert row["content"] == content and row["metadata"] == {"passed": True, "tests": [3, 4]}
    assert row["tags"] == ["t"] and row["created_at"].endswith("+00:00")


def test_sessions_start_and_end(db):
    started = db.start_session("run r1")
    db.remember_many([_memory("in session")])
    ended = db.end_session(started["session_id"], "done")
    assert ended["summary"] == "done" and ended["memories_added"] == 1
    assert db.end_session(999, "x") is None
    assert db.stats()["sessions"] == 1 and db.stats()["open_sessions"] == 0


def test_consolidate_merges_only_exact_duplicates(db):
    db.remember_many([_memory("same"), _memory("same"), _memory("same", tags=["t"]), _memory("other")])
    assert db.consolidate(dry_run=True) == {"dry_run": True, "duplicates": 1, "removed": 0}
    assert db.stats()["total_memories"] == 4
    assert db.consolidate(dry_run=False)["removed"] == 1
    assert db.stats()["total_memories"] == 3
    assert len(db.recall("same", None, None, 10, "search")) == 2


def test_two_connections_to_one_file_see_each_others_writes(db):
    other = MemoryDB(db.path)
    try:
        other.remember_many([_memory("from other")])
        db.remember_many([_memory("from first")])
        assert db.stats()["total_memories"] == other.stats()["total_memories"] == 2
    finally:
        other.close()


def _sqlite_steps(db: MemoryDB, query, *args) -> int:
    """SQLite VM instructions (in hundreds) a query takes: work, independent of the machine's speed."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    db.connection.set_progress_handler(count, 100)  # the connection MemoryDB runs its queries on
    try:
        query(*args)
    finally:
        db.connection.set_progress_handler(None, 100)
    return steps[0]


def test_recall_by_a_rare_tag_costs_the_same_in_a_ten_times_larger_memory(tmp_path: Path) -> None:
    """A spec's origin tag is rare and "spec" is on every spec: the rare tag drives the lookup."""
    work = {}
    for size in (2_000, 20_000):
        database = MemoryDB(tmp_path / f"{size}.db")
        database.remember_many(
            _memory(f"spec {i}", category="spec", tags=("spec", f"HumanEval/{i % 164}", f"spec-origin:{i}"))
            for i in range(size)
        )
        found = database.recall("", ["spec", "spec-origin:777"], None, 1, "recent")
        assert [m["title"] for m in found] == ["spec 777"]
        work[size] = _sqlite_steps(database, database.recall, "", ["spec", "spec-origin:777"], None, 1, "recent")
        database.close()
    assert work[20_000] <= work[2_000] * 1.2, work
