"""``python -m koderz.cortex export|search|stats``: the memory for people, no MCP client (real processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from koderz.cortex.db import MemoryDB
from koderz.cortex.limits import MAX_PAGE_ITEMS, MAX_QUERY


def cortex(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "koderz.cortex", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "cortex.db"
    database = MemoryDB(path)
    rows = [
        {
            "title": f"spec {i}",
            "content": f"sort the list {i}\nsecond line",
            "category": "spec",
            "tags": ["spec", f"HumanEval/{i}"],
            "importance": i / 300,
            "metadata": {"i": i},
        }
        for i in range(250)
    ]
    database.remember_many(rows)
    database.close()
    return path


def test_export_writes_every_matching_memory_as_json_lines(db: Path, server_env) -> None:
    done = cortex("export", "--db", str(db), "--tag", "spec", env=server_env)
    assert done.returncode == 0, done.stderr
    memories = [json.loads(line) for line in done.stdout.splitlines()]
    assert [m["title"] for m in memories] == [f"spec {i}" for i in range(250)]  # more than one page, oldest first
    only = cortex("export", "--db", str(db), "--tag", "HumanEval/7", env=server_env)
    assert [json.loads(line)["metadata"] for line in only.stdout.splitlines()] == [{"i": 7}]


def test_search_lists_matches_for_people_or_as_json(db: Path, server_env) -> None:
    done = cortex("search", "--db", str(db), "list 12", "--limit", "3", env=server_env)
    assert done.returncode == 0 and "spec 12" in done.stdout and "sort the list 12" in done.stdout
    top = cortex("search", "--db", str(db), "--mode", "important", "--limit", "2", "--json", env=server_env)
    assert [json.loads(line)["title"] for line in top.stdout.splitlines()] == ["spec 249", "spec 248"]


def test_stats_counts_memories(db: Path, server_env) -> None:
    done = cortex("stats", "--db", str(db), env=server_env)
    stats = json.loads(done.stdout)
    assert stats["total_memories"] == 250 and stats["by_category"] == {"spec": 250}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "x" * (MAX_QUERY + 1)], str(MAX_QUERY)),
        (["search", "--limit", str(MAX_PAGE_ITEMS + 1)], str(MAX_PAGE_ITEMS)),
        (["stats", "--db", "MISSING"], "is not a file"),
    ],
)
def test_bad_input_exits_2_naming_the_value_and_creates_nothing(
    tmp_path: Path, db: Path, server_env, args, message
) -> None:
    args = [a.replace("MISSING", str(tmp_path / "missing.db")) for a in args]
    full = args if "--db" in args else [*args[:1], "--db", str(db), *args[1:]]
    done = cortex(*full, env=server_env)
    assert done.returncode == 2 and message in done.stderr
    assert not (tmp_path / "missing.db").exists()
