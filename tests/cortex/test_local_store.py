"""The local store (the default): the run writes the SQLite file itself (real files, real processes)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from koderz.cortex import CortexConfig, MemoryRecord, open_memory_store
from koderz.cortex.limits import MAX_CONTENT
from koderz.cortex.local import LocalStore
from koderz.errors import MemoryStoreError

WRITER = Path(__file__).resolve().parents[1] / "support" / "cortex_writer.py"
HOSTILE = "Traceback: bad byte \udcff then \ud800 and a NUL \x00 end"


def local_cfg(tmp_path: Path, **change) -> CortexConfig:
    return CortexConfig(db=str(tmp_path / "cortex.db"), **change)


def test_local_is_the_default_mode() -> None:
    assert CortexConfig().mode == "local"


async def test_round_trip_recall_export_and_sessions(tmp_path) -> None:
    async with open_memory_store(local_cfg(tmp_path), "run-1") as store:
        assert isinstance(store, LocalStore)
        session = await store.start_session("run 1")
        assert (
            await store.remember(MemoryRecord("spec HumanEval/0", "sort the list", tags=("spec", "HumanEval/0")))
            is None
        )
        ids = await store.remember_batch(
            [MemoryRecord("attempt HumanEval/0", "def f(): ...", tags=("attempt", "HumanEval/0"))]
        )
        assert session is not None and len(ids) == 1
        assert [m["title"] for m in await store.recall(tags=["spec", "HumanEval/0"])] == ["spec HumanEval/0"]
        assert [m["title"] for m in await store.recall("sort list")] == ["spec HumanEval/0"]
        assert len(await store.export(tags=["HumanEval/0"])) == 2
        await store.end_session(session, "done")
        stats = await store.stats()
    assert stats["total_memories"] == 2 and stats["sessions"] == 1 and stats["open_sessions"] == 0
    assert store.lost_writes == 0


async def test_a_read_sees_the_runs_own_queued_writes_and_waits_only_for_those_that_match(tmp_path) -> None:
    async with open_memory_store(local_cfg(tmp_path), "run-1") as store:
        assert isinstance(store, LocalStore)
        for task in ("HumanEval/0", "HumanEval/1"):
            await store.remember(MemoryRecord(f"spec {task}", "text", category="spec", tags=("spec", task)))
        # what decides whether a read flushes the queue first (a read that cannot match does not wait)
        assert store.could_answer(["spec", "HumanEval/1"], "spec")
        assert not store.could_answer(["spec", "HumanEval/2"], None)
        assert not store.could_answer(["spec", "HumanEval/0"], "attempt")
        assert [m["title"] for m in await store.recall(tags=["spec", "HumanEval/1"], mode="recent")] == [
            "spec HumanEval/1"
        ]
        assert [m["title"] for m in await store.export(category="spec")] == ["spec HumanEval/0", "spec HumanEval/1"]
        assert await store.recall(tags=["spec", "HumanEval/2"], mode="recent") == []


async def test_the_mcp_server_on_the_same_file_sees_local_writes(tmp_path) -> None:
    async with open_memory_store(local_cfg(tmp_path), "run-1") as store:
        await store.remember(MemoryRecord("written locally", "x", tags=("shared",)))
        async with open_memory_store(local_cfg(tmp_path, mode="embedded"), "reader") as server:
            assert [m["title"] for m in await server.export(tags=["shared"])] == ["written locally"]


@pytest.mark.parametrize("mode", ["local", "embedded"])
async def test_a_surrogate_laden_record_is_stored_sanitised_and_the_store_keeps_working(tmp_path, mode) -> None:
    hostile = MemoryRecord(
        f"attempt {HOSTILE}", HOSTILE, tags=("attempt", HOSTILE), metadata={"error": HOSTILE, "nested": [HOSTILE]}
    )
    async with open_memory_store(local_cfg(tmp_path, mode=mode), "r") as store:
        await store.remember(MemoryRecord("before", "x", tags=("ok",)))
        await store.remember(hostile)
        assert len(await store.remember_batch([hostile, MemoryRecord("batched", "x", tags=("ok",))])) == 2
        await store.remember(MemoryRecord("after", "x", tags=("ok",)))
        stored = [m for m in await store.export() if m["title"].startswith("attempt")]
        titles = [m["title"] for m in await store.export(tags=["ok"])]
    assert titles == ["before", "batched", "after"]
    assert store.lost_writes == 0
    assert len(stored) == 2
    for memory in stored:
        assert memory["content"] == "Traceback: bad byte \\udcff then \\ud800 and a NUL \\x00 end"
        assert memory["metadata"]["error"] == memory["content"] and memory["metadata"]["nested"] == [memory["content"]]
        assert memory["content"] in memory["tags"]
        memory["content"].encode("utf-8")  # valid UTF-8: would raise on a lone surrogate


async def test_huge_candidate_output_is_stored_bounded(tmp_path) -> None:
    async with open_memory_store(local_cfg(tmp_path), "r") as store:
        await store.remember(MemoryRecord("big", "x" * 5_000_000, metadata={"got": "y" * 1_000_000}))
        (memory,) = await store.export()
    assert len(memory["content"]) <= MAX_CONTENT and memory["content"].endswith("more characters cut]")
    assert len(memory["metadata"]["got"]) < 5_000


async def test_a_write_sqlite_refuses_is_counted_and_later_writes_go_on(tmp_path, caplog) -> None:
    cfg = local_cfg(tmp_path, timeout=0.2)
    async with open_memory_store(cfg, "r") as store:
        assert isinstance(store, LocalStore)
        blocker = sqlite3.connect(cfg.db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process's write lock, held past the busy timeout
        with caplog.at_level(logging.WARNING, logger="koderz.cortex.local"):
            await store.remember(MemoryRecord("refused", "x"))
            await store.remember(MemoryRecord("refused too", "x"))
            await store.flush()
            assert await store.remember_batch([MemoryRecord("refused batch", "x")]) == []
        blocker.execute("ROLLBACK")
        blocker.close()
        await store.remember(MemoryRecord("stored", "x"))
        titles = [m["title"] for m in await store.export()]
    assert titles == ["stored"]
    assert store.lost_writes == 3
    assert len([r for r in caplog.records if r.name == "koderz.cortex.local"]) == 1  # one warning, not one a write


async def test_a_read_does_not_wait_for_the_batch_being_stored(tmp_path) -> None:
    """A batch stuck behind another process's write lock holds the writer thread; a lookup that the
    batch cannot answer is served by the read connection meanwhile. Were reads on the writer's
    thread, the recall would wait out the batch (the 30 s busy timeout) and miss its deadline."""
    cfg = local_cfg(tmp_path, timeout=30.0)
    async with open_memory_store(cfg, "r") as store:
        assert isinstance(store, LocalStore)
        await store.remember_batch([MemoryRecord("spec HumanEval/0", "text", category="spec", tags=("spec", "t0"))])
        blocker = sqlite3.connect(cfg.db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            await store.remember(MemoryRecord("result HumanEval/1", "x", category="result", tags=("result",)))
            async with asyncio.timeout(10):
                while not store.storing:  # noqa: ASYNC110 - the writer has taken the batch, waits for the lock
                    await asyncio.sleep(0.01)
                found = await store.recall(tags=["spec", "t0"], mode="recent", limit=1)
            assert store.storing, "the batch was stored before the read: the test proved nothing"
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert [m["title"] for m in found] == ["spec HumanEval/0"]
        titles = [m["title"] for m in await store.export(tags=["result"])]
    assert titles == ["result HumanEval/1"] and store.lost_writes == 0


async def test_remember_does_not_wait_for_another_writers_lock(tmp_path) -> None:
    """With another process's write lock held, remember() still returns; the records land once it is free.

    Were remember() synchronous, the first call would block for the 30 s busy timeout with
    the lock held, then count a lost write.
    """
    cfg = local_cfg(tmp_path, timeout=30.0)
    async with open_memory_store(cfg, "r") as store:
        assert isinstance(store, LocalStore)
        blocker = sqlite3.connect(cfg.db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            for i in range(3):
                assert await store.remember(MemoryRecord(f"queued {i}", "x")) is None
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        titles = [m["title"] for m in await store.export()]
    assert titles == ["queued 0", "queued 1", "queued 2"]
    assert store.lost_writes == 0


async def test_a_file_sqlite_cannot_open_is_one_line_or_costs_only_the_memory(tmp_path, caplog) -> None:
    cfg = CortexConfig(db=str(tmp_path))  # a directory
    with pytest.raises(MemoryStoreError, match="cannot be opened") as error:
        async with open_memory_store(cfg, "r"):
            pass
    assert "\n" not in str(error.value) and str(tmp_path) in str(error.value)
    with caplog.at_level(logging.WARNING):
        async with open_memory_store(cfg, "r", defer=True) as store:
            assert await store.remember(MemoryRecord("a", "x")) is None
            assert await store.recall() == []
    assert store.lost_writes == 1
    assert sum("without memory" in r.getMessage() for r in caplog.records) == 1
    assert [r.getMessage() for r in caplog.records if r.name == "koderz.cortex.local"] == []  # said once, above


def test_four_writer_processes_at_once_lose_nothing_and_store_each_record_once(tmp_path, server_env) -> None:
    db, go, count = tmp_path / "shared.db", tmp_path / "go", 150
    writers = [
        subprocess.Popen(
            [sys.executable, str(WRITER), str(db), str(w), str(count), str(go)],
            env=server_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    try:
        go.touch()  # every writer opens the new file and writes at the same moment
        outputs = [proc.communicate(timeout=300) for proc in writers]
    finally:
        for proc in writers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [proc.returncode for proc in writers] == [0] * 4, [err for _, err in outputs]
    assert [json.loads(out)["lost_writes"] for out, _ in outputs] == [0] * 4
    assert not any("locked" in err for _, err in outputs)
    conn = sqlite3.connect(db)
    titles = [t for (t,) in conn.execute("SELECT title FROM memories")]
    sessions = conn.execute("SELECT COUNT(*), COUNT(ended_at) FROM sessions").fetchone()
    conn.close()
    assert sorted(titles) == sorted(f"w{w} r{i}" for w in range(4) for i in range(count))
    assert sessions == (4, 4)


def test_two_koderz_runs_at_once_share_the_default_store(tmp_path, server_env) -> None:
    def run(name: str) -> subprocess.Popen[str]:
        args = [sys.executable, "-m", "koderz", "end=3", "tracking=off", "cache=false", f"hydra.run.dir={name}"]
        return subprocess.Popen(
            args, cwd=tmp_path, env=server_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    runs = [run("a"), run("b")]
    try:
        logs = [proc.communicate(timeout=300)[0] for proc in runs]
    finally:
        for proc in runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [proc.returncode for proc in runs] == [0, 0], logs
    conn = sqlite3.connect(tmp_path / "outputs" / "cortex.db")
    summaries = conn.execute("SELECT COUNT(*) FROM memories WHERE category = 'summary'").fetchone()[0]
    results = conn.execute("SELECT COUNT(*) FROM memories WHERE title LIKE 'result %'").fetchone()[0]
    conn.close()
    assert (summaries, results) == (2, 6)


NO_MCP_RUN = """
import asyncio, sys
from pathlib import Path
from tests.conftest import run_job
summary = asyncio.run(run_job(Path("run"), "end=2", "tracking=off", "cache=false")).summary
print(summary.passed, sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("mcp", "mcp_types")}))
"""


def test_the_default_run_stores_memory_without_the_mcp_sdk_or_a_server(tmp_path, server_env) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", NO_MCP_RUN], cwd=tmp_path, env=server_env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[-2] == "2 []"
    conn = sqlite3.connect(tmp_path / "outputs" / "cortex.db")
    (results,) = conn.execute("SELECT COUNT(*) FROM memories WHERE title LIKE 'result %'").fetchone()
    conn.close()
    assert results == 2
