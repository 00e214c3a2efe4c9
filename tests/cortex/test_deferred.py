"""The embedded server opened in the background: problems write before it is up (real server)."""

from __future__ import annotations

import logging

from koderz.cortex.client import CortexClient
from koderz.cortex.config import CortexConfig
from koderz.cortex.factory import open_memory_store
from koderz.cortex.store import MemoryRecord


async def test_writes_before_the_server_is_up_arrive_in_order(tmp_path) -> None:
    cfg = CortexConfig(mode="embedded", db=str(tmp_path / "c.db"))
    async with open_memory_store(cfg, "run", defer=True) as store:
        ids = [await store.remember(MemoryRecord(f"early {i}", "x", tags=("early",))) for i in range(5)]
        assert ids == [None] * 5  # queued: the server is still starting
        assert isinstance(store, CortexClient)
        assert await store.ready()
        await store.remember(MemoryRecord("late", "x", tags=("early",)))
    async with open_memory_store(cfg, "check") as check:
        titles = [m["title"] for m in await check.export(tags=["early"])]
    assert titles == [f"early {i}" for i in range(5)] + ["late"]
    assert store.lost_writes == 0


async def test_a_server_that_cannot_start_costs_memory_not_the_run(tmp_path, caplog) -> None:
    cfg = CortexConfig(mode="embedded", db=str(tmp_path), timeout=10)  # a directory: SQLite cannot open it
    caplog.set_level(logging.WARNING)
    async with open_memory_store(cfg, "run", defer=True) as store:
        await store.remember(MemoryRecord("a", "x"))
        assert isinstance(store, CortexClient)
        assert await store.ready() is False
        await store.remember(MemoryRecord("b", "x"))
        assert await store.recall(tags=["a"]) == []
    assert store.lost_writes == 2
    assert sum("without memory" in r.getMessage() for r in caplog.records) == 1
