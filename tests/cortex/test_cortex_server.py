"""The embedded server as a real process over stdio, through the plain MCP SDK client."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

TOOLS = {
    "remember",
    "remember_batch",
    "recall",
    "export_memories",
    "start_session",
    "end_session",
    "memory_stats",
    "consolidate",
}


@pytest.fixture
def connect(tmp_path: Path, server_env: dict[str, str]):
    """Open a plain SDK client on a fresh server process (an async context manager).

    Not an async fixture: the SDK's transport must be exited by the task that entered it.
    """

    @asynccontextmanager
    async def open_client() -> AsyncIterator[Client]:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "koderz.cortex", "serve", "--db", str(tmp_path / "s.db")],
            env=server_env,
        )
        async with Client(stdio_client(params), read_timeout_seconds=20) as client:
            yield client

    return open_client


async def call(client: Client, tool: str, **arguments):
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def test_lists_every_cortex_tool_with_an_output_schema(connect):
    async with connect() as mcp_client:
        tools = {t.name: t for t in (await mcp_client.list_tools()).tools}
        assert set(tools) == TOOLS
        assert all(t.output_schema for t in tools.values())


async def test_remember_and_recall_round_trip_structured(connect):
    async with connect() as mcp_client:
        first = await call(
            mcp_client,
            "remember",
            title="spec HumanEval/0",
            content="def f(): pass",
            category="spec",
            tags=["spec", "HumanEval/0"],
            importance="high",
            metadata={"cost": 0.25},
        )
        assert isinstance(first["id"], int)
        got = await call(mcp_client, "recall", query="spec", tags=["spec"])
        (memory,) = got["memories"]
        assert memory == {
            **memory,
            "id": first["id"],
            "content": "def f(): pass",
            "category": "spec",
            "tags": ["spec", "HumanEval/0"],
            "importance": 0.75,
            "metadata": {"cost": 0.25},
        }


async def test_remember_batch_stores_all_in_order(connect):
    async with connect() as mcp_client:
        batch = [{"title": f"m{i}", "content": f"c{i}", "tags": ["batch"]} for i in range(50)]
        stored = await call(mcp_client, "remember_batch", memories=batch)
        assert stored["count"] == 50 and stored["ids"] == sorted(stored["ids"])
        exported = await call(mcp_client, "export_memories", tags=["batch"])
        assert [m["title"] for m in exported["memories"]] == [f"m{i}" for i in range(50)]


async def test_recall_and_export_filters_really_filter(connect):
    async with connect() as mcp_client:
        for title, category, tags in [
            ("a", "spec", ["spec", "run1"]),
            ("b", "attempt", ["attempt", "run1"]),
            ("c", "spec", ["spec", "run2"]),
        ]:
            await call(mcp_client, "remember", title=title, content="shared words", category=category, tags=tags)
        titles = lambda data: sorted(m["title"] for m in data["memories"])  # noqa: E731
        assert titles(await call(mcp_client, "export_memories", tags=["run1"])) == ["a", "b"]
        assert titles(await call(mcp_client, "export_memories", category="spec")) == ["a", "c"]
        assert titles(await call(mcp_client, "export_memories", tags=["run1"], category="spec")) == ["a"]
        assert titles(await call(mcp_client, "recall", query="shared", tags=["run2"])) == ["c"]
        assert titles(await call(mcp_client, "recall", query="shared", category="attempt")) == ["b"]
        assert titles(await call(mcp_client, "recall", query="missing")) == []
        assert (await call(mcp_client, "recall", mode="recent", limit=1))["memories"][0]["title"] == "c"


async def test_recall_important_mode_orders_by_importance(connect):
    async with connect() as mcp_client:
        for title, importance in [("low", 0.1), ("top", 1.0), ("mid", "normal")]:
            await call(mcp_client, "remember", title=title, content="x", importance=importance)
        got = await call(mcp_client, "recall", mode="important")
        assert [m["title"] for m in got["memories"]] == ["top", "mid", "low"]


async def test_sessions_start_and_end_with_summary(connect):
    async with connect() as mcp_client:
        started = await call(mcp_client, "start_session", context="run r1")
        await call(mcp_client, "remember", title="t", content="c")
        ended = await call(mcp_client, "end_session", session_id=started["session_id"], summary="3/5 passed")
        assert ended["summary"] == "3/5 passed" and ended["memories_added"] == 1
        stats = await call(mcp_client, "memory_stats")
        assert stats["sessions"] == 1 and stats["open_sessions"] == 0 and stats["total_memories"] == 1


async def test_consolidate_dry_run_changes_nothing(connect):
    async with connect() as mcp_client:
        for _ in range(3):
            await call(mcp_client, "remember", title="dup", content="same")
        assert await call(mcp_client, "consolidate", dry_run=True) == {"dry_run": True, "duplicates": 2, "removed": 0}
        assert (await call(mcp_client, "memory_stats"))["total_memories"] == 3
        assert (await call(mcp_client, "consolidate"))["removed"] == 2
        assert (await call(mcp_client, "memory_stats"))["total_memories"] == 1


BAD_CALLS = [
    ("recall", {"mode": "random"}, "mode"),
    ("recall", {"limit": 0}, "limit"),
    ("remember", {"title": "t", "content": "c", "importance": 7}, "importance"),
    ("remember", {"title": "t", "content": "c", "importance": "huge"}, "'huge'"),
    ("end_session", {"session_id": 42}, "no session with id 42"),
]


async def test_bad_arguments_are_tool_errors_naming_the_value(connect):
    async with connect() as mcp_client:
        for tool, arguments, message in BAD_CALLS:
            result = await mcp_client.call_tool(tool, arguments)
            assert result.is_error and message in result.content[0].text, (tool, arguments)
        assert (await call(mcp_client, "memory_stats"))["total_memories"] == 0
