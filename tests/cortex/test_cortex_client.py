"""CortexClient / open_memory_store against real server processes (stdio and HTTP)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from dataclasses import replace

import pytest

from koderz.cortex import MemoryRecord, NullStore, open_memory_store, preflight
from koderz.cortex.client import CortexClient, ServerTarget
from koderz.errors import ConfigError, MemoryStoreError


def record(i: int, *tags: str) -> MemoryRecord:
    return MemoryRecord(
        title=f"attempt {i}",
        content=f"code {i}",
        category="attempt",
        tags=("run-1", *tags),
        metadata={"i": i, "passed": i % 2 == 0},
    )


async def remember_concurrently(store, total: int, workers: int = 64) -> list[str | None]:
    """``total`` remember calls spread over ``workers`` asyncio tasks sharing ``store``."""

    async def worker(w: int) -> list[str | None]:
        return [await store.remember(record(i)) for i in range(w, total, workers)]

    return [mid for chunk in await asyncio.gather(*(worker(w) for w in range(workers))) for mid in chunk]


async def assert_concurrent_writes_all_stored(store, total: int) -> None:
    ids = await remember_concurrently(store, total)
    assert None not in ids and len(set(ids)) == total
    exported = await store.export(tags=["run-1"])
    assert len(exported) == total
    assert sorted(m["metadata"]["i"] for m in exported) == list(range(total))
    assert (await store.stats())["total_memories"] == total
    assert store.lost_writes == 0


async def test_1000_concurrent_remembers_over_one_session_are_all_stored(store):
    await assert_concurrent_writes_all_stored(store, 1000)


@pytest.mark.slow
async def test_10000_remembers_from_64_tasks_over_one_session_are_all_stored(store):
    await assert_concurrent_writes_all_stored(store, 10_000)


async def test_recall_export_and_sessions_through_the_store(store):
    spec = MemoryRecord(
        "spec HumanEval/3", "write below_zero", category="spec", tags=("spec", "HumanEval/3", "run-1"), importance=0.8
    )
    spec_id = await store.remember(spec)
    await store.remember(record(1, "HumanEval/3"))
    (found,) = await store.recall("below_zero", tags=["spec", "HumanEval/3"])
    assert found["id"] == int(spec_id) and found["content"] == "write below_zero"
    assert [m["title"] for m in await store.recall(tags=["run-1"], category="attempt")] == ["attempt 1"]
    assert await store.recall("nothing-like-this") == []
    session = await store.start_session("run run-1")
    assert session is not None
    await store.end_session(session, "1/1 passed")
    stats = await store.stats()
    assert stats["sessions"] == 1 and stats["open_sessions"] == 0
    assert (await store.consolidate(dry_run=True))["removed"] == 0


async def test_remember_batch_returns_ids_across_chunks(store):
    ids = await store.remember_batch([record(i) for i in range(1200)])  # > MAX_BATCH
    assert len(set(ids)) == 1200
    assert len(await store.export(tags=["run-1"])) == 1200


async def test_write_buffer_flushes_on_size_before_reads_and_on_close(cortex_cfg):
    cfg = replace(cortex_cfg, write_buffer=10, flush_interval=60.0)
    async with open_memory_store(cortex_cfg, "observer") as observer:
        async with open_memory_store(cfg, "r") as store:
            assert [await store.remember(record(i)) for i in range(25)] == [None] * 25
            assert len(await observer.export(tags=["run-1"])) == 20  # two full batches went out
            assert len(await store.export(tags=["run-1"])) == 25  # reads flush first
            for i in range(25, 28):
                await store.remember(record(i))
            assert len(await observer.export(tags=["run-1"])) == 25
        assert len(await observer.export(tags=["run-1"])) == 28  # close flushed the rest


async def test_write_buffer_flushes_on_interval(cortex_cfg):
    buffered = replace(cortex_cfg, write_buffer=1000, flush_interval=0.05)
    async with open_memory_store(buffered, "r") as store, open_memory_store(cortex_cfg, "r") as observer:
        await store.remember(record(0))
        for _ in range(200):
            if await observer.export(tags=["run-1"]):
                break
            await asyncio.sleep(0.05)
        assert len(await observer.export(tags=["run-1"])) == 1


async def test_killed_server_is_restarted_and_later_writes_land(store):
    assert await store.remember(record(0)) is not None
    first_pid = (await store.stats())["server_pid"]
    os.kill(first_pid, signal.SIGKILL)
    ids = await remember_concurrently(store, 100, workers=16)
    assert None not in ids
    stats = await store.stats()
    assert stats["server_pid"] != first_pid and stats["total_memories"] == 101
    assert store.lost_writes == 0


async def test_server_that_cannot_restart_counts_lost_writes_and_warns_once(store, caplog):
    pid = (await store.stats())["server_pid"]
    store.target = ServerTarget("/nonexistent/cortex-server")  # the restart will fail
    os.kill(pid, signal.SIGKILL)
    with caplog.at_level(logging.WARNING, logger="koderz.cortex.client"):
        assert await store.remember(record(1)) is None
        assert await store.remember_batch([record(2), record(3)]) == []
        await store.end_session("1", "summary")
        assert await store.recall("code") == [] and await store.export() == []
    assert store.lost_writes == 4
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_ephemeral_mode_starts_a_server_per_operation(cortex_cfg):
    async with open_memory_store(replace(cortex_cfg, persistent=False), "r") as store:
        assert isinstance(store, CortexClient) and await store.remember(record(1)) is not None
        first, second = await store.stats(), await store.stats()
        assert first["server_pid"] != second["server_pid"]
        assert second["total_memories"] == 1


async def test_external_stdio_command_runs_any_server(cortex_cfg, tmp_path, server_env, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", server_env["PYTHONPATH"])
    cfg = replace(
        cortex_cfg,
        mode="external",
        command=sys.executable,
        args=["-m", "koderz.cortex", "serve", "--db", str(tmp_path / "ext.db")],
    )
    async with open_memory_store(cfg, "r") as store:
        assert isinstance(store, CortexClient) and await store.remember(record(1)) is not None
        assert (await store.stats())["db_path"] == str((tmp_path / "ext.db").resolve())


async def test_external_url_over_streamable_http(cortex_cfg, http_server):
    cfg = replace(cortex_cfg, mode="external", url=http_server.url, token_file=str(http_server.token_file))
    async with open_memory_store(cfg, "r") as store:
        await assert_concurrent_writes_all_stored(store, 200)
    async with open_memory_store(replace(cfg, persistent=False), "r2") as store:
        assert len(await store.export(tags=["run-1"])) == 200


async def test_two_clients_share_one_http_server(cortex_cfg, http_server):
    cfg = replace(cortex_cfg, mode="external", url=http_server.url, token_file=str(http_server.token_file))
    async with open_memory_store(cfg, "a") as one, open_memory_store(cfg, "b") as two:
        await asyncio.gather(
            one.remember_batch([record(i) for i in range(50)]), two.remember_batch([record(i) for i in range(50, 100)])
        )
        assert len(await one.export(tags=["run-1"])) == 100


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"command": "/nonexistent/cortex-server"}, "unreachable"),
        ({"command": sys.executable, "args": ["-c", "pass"]}, "unreachable"),
        ({"command": sys.executable, "args": ["-c", "import time; time.sleep(60)"], "timeout": 0.5}, "no answer"),
        ({"url": "http://127.0.0.1:9/mcp"}, "unreachable"),
    ],
)
async def test_bad_external_server_is_a_one_line_preflight_error(cortex_cfg, change, message):
    cfg = replace(cortex_cfg, mode="external", **change)
    with pytest.raises(MemoryStoreError) as caught:
        async with open_memory_store(cfg, "r"):
            pass
    assert message in str(caught.value) and "\n" not in str(caught.value)


async def test_preflight_checks_without_keeping_a_connection(cortex_cfg):
    await preflight(cortex_cfg)
    await preflight(replace(cortex_cfg, mode="off"))
    with pytest.raises(MemoryStoreError, match="/nonexistent/cortex-server"):
        await preflight(replace(cortex_cfg, mode="external", command="/nonexistent/cortex-server"))


async def test_server_without_cortex_tools_is_rejected(cortex_cfg, tmp_path, server_env):
    script = tmp_path / "other_server.py"
    script.write_text(
        "from mcp.server.mcpserver import MCPServer\n"
        "s = MCPServer('other')\n"
        "@s.tool()\n"
        "def ping() -> str:\n    return 'pong'\n"
        "s.run('stdio')\n"
    )
    client = CortexClient(ServerTarget(sys.executable, (str(script),), server_env), timeout=20)
    with pytest.raises(MemoryStoreError, match=r"no supported memory server.*no 'remember' tool"):
        await client.connect()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": "remote"}, "cortex.mode='remote'"),
        ({"mode": "external"}, "needs cortex.command"),
        ({"mode": "external", "url": "ftp://x"}, "cortex.url='ftp://x'"),
        ({"mode": "external", "url": "http://x", "command": "y"}, "not both"),
        ({"timeout": 0}, "cortex.timeout=0"),
    ],
)
async def test_bad_config_is_a_config_error(cortex_cfg, change, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        async with open_memory_store(replace(cortex_cfg, **change), "r"):
            pass


async def test_off_is_a_null_store_and_does_not_import_mcp(cortex_cfg, server_env):
    async with open_memory_store(replace(cortex_cfg, mode="off"), "r") as store:
        assert isinstance(store, NullStore)
    code = (
        "import asyncio, sys\n"
        "from koderz.cortex import CortexConfig, open_memory_store, MemoryRecord\n"
        "async def main():\n"
        "    async with open_memory_store(CortexConfig(mode='off'), 'r') as s:\n"
        "        assert await s.remember(MemoryRecord('t', 'c')) is None\n"
        "asyncio.run(main())\n"
        "assert not any(m == 'mcp' or m.startswith('mcp.') for m in sys.modules), 'mcp imported'\n"
    )
    await asyncio.to_thread(subprocess.run, [sys.executable, "-c", code], env=server_env, check=True, timeout=60)


async def test_a_refused_write_costs_that_write_and_the_connection_stays(store, caplog):
    pid = (await store.stats())["server_pid"]
    with caplog.at_level(logging.WARNING, logger="koderz.cortex.client"):
        await store.end_session("999", "no such session")  # the server answers with a tool error
        assert await store.recall("bad \udcff query") == []  # not UTF-8: refused before the transport
    assert store.lost_writes == 1
    assert await store.remember(record(1)) is not None
    stats = await store.stats()
    assert stats["server_pid"] == pid and stats["total_memories"] == 1  # same server, same connection


async def test_write_buffer_batch_with_hostile_text_is_stored_sanitised(cortex_cfg):
    async with open_memory_store(replace(cortex_cfg, write_buffer=4), "r") as store:
        for i in range(4):
            await store.remember(MemoryRecord(f"t{i}", f"out \udcff{i}", tags=("run-1",)))
        memories = await store.export(tags=["run-1"])
    assert [m["content"] for m in memories] == [f"out \\udcff{i}" for i in range(4)]
    assert store.lost_writes == 0


async def test_a_batch_of_large_records_goes_out_in_requests_under_the_http_body_limit(cortex_cfg, http_server):
    """30 records of 90 KB (2.7 MB) in one remember_batch: sent in chunks of at most 1 MiB (the server takes 4)."""
    cfg = replace(cortex_cfg, mode="external", url=http_server.url, token_file=str(http_server.token_file))
    big = [MemoryRecord(f"big {i}", f"{i % 10}" * 90_000, tags=("big",)) for i in range(30)]
    async with open_memory_store(cfg, "r") as store:
        ids = await store.remember_batch(big)
        exported = await store.export(tags=["big"])
    assert len(set(ids)) == 30 and store.lost_writes == 0
    assert [m["content"] for m in exported] == [r.content for r in big]


async def test_a_client_without_the_token_is_refused_before_the_run(cortex_cfg, http_server, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(http_server.token_file.parent / "no-config"))  # no default token file
    monkeypatch.delenv("KODERZ_CORTEX_TOKEN", raising=False)
    monkeypatch.delenv("KODERZ_CORTEX_TOKEN_FILE", raising=False)
    cfg = replace(cortex_cfg, mode="external", url=http_server.url)
    with pytest.raises(MemoryStoreError, match="unreachable") as refused:
        async with open_memory_store(cfg, "r"):
            pass
    assert "\n" not in str(refused.value) and "no bearer token was sent" in str(refused.value)
