"""The server through the official MCP Python SDK client, over stdio and streamable HTTP (real processes).

What any MCP client must get: pages in MCP's cursor shape that stay far under the SDK's
1 MiB SSE limit, the result once (structured) with a one-line text, limits refused with a
tool error naming them, unicode intact, annotations, and over HTTP a bearer token and a
loopback Host required.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent

from koderz.cortex.limits import MAX_CONTENT, MAX_MEMORY_BYTES, MAX_PAGE_ITEMS, PAGE_BYTES
from tests.support import cortex_processes

Connect = Callable[[], AbstractAsyncContextManager[Client]]
UNICODE = "naïve café — 数据 😀 עברית \u200d e\u0301 \U0001f9ea"


@pytest.fixture(params=["stdio", "http"])
def connect(request, tmp_path: Path, server_env: dict[str, str]) -> Any:
    """Open a plain SDK client (an async context manager) on a fresh server, over stdio or HTTP."""
    if request.param == "stdio":
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "koderz.cortex", "serve", "--db", str(tmp_path / "s.db")],
            env=server_env,
        )

        @asynccontextmanager
        async def over_stdio() -> AsyncIterator[Client]:
            async with Client(stdio_client(params), read_timeout_seconds=30) as client:
                yield client

        yield over_stdio
        return
    with cortex_processes.http_server(tmp_path) as server:

        @asynccontextmanager
        async def over_http() -> AsyncIterator[Client]:
            headers = {"Authorization": f"Bearer {server.token}"}
            async with (
                httpx2.AsyncClient(headers=headers, timeout=30) as http,
                Client(streamable_http_client(server.url, http_client=http), read_timeout_seconds=30) as client,
            ):
                yield client

        yield over_http


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    (text,) = result.content  # one short summary, not a second copy of the data
    assert len(getattr(text, "text", "")) < 300
    return dict(result.structured_content)


def reply_bytes(data: dict[str, Any]) -> int:
    return len(json.dumps(data, ensure_ascii=False).encode())


async def test_ten_70_kb_memories_come_back_in_pages_under_the_sse_limit(connect: Connect) -> None:
    """The SDK over HTTP refuses an SSE event over 1 MiB: ten 70 KB memories used to be one."""
    async with connect() as client:
        for i in range(10):
            await call(client, "remember", title=f"big {i}", content=f"{i}" * 70_000, tags=["big"])
        pages, cursor, memories = 0, None, []
        while True:
            page = await call(
                client, "recall", tags=["big"], mode="recent", limit=10, **({"cursor": cursor} if cursor else {})
            )
            assert reply_bytes(page) <= PAGE_BYTES + 1_000 and page["count"] == len(page["memories"])
            memories += page["memories"]
            pages += 1
            cursor = page.get("nextCursor")
            if not cursor:
                break
        assert pages >= 2  # 700 KB do not fit one 512 KiB page
        assert [m["title"] for m in memories] == [f"big {i}" for i in reversed(range(10))]
        assert all(len(m["content"]) == 70_000 for m in memories)


async def test_export_walks_every_page_once_in_order(connect: Connect) -> None:
    async with connect() as client:
        for start in range(0, 1_050, 350):
            batch = [
                {"title": f"m{i}", "content": f"c{i}", "tags": ["walk", f"odd-{i % 2}"]}
                for i in range(start, start + 350)
            ]
            await call(client, "remember_batch", memories=batch)
        titles, cursor, pages = [], None, 0
        while True:
            page = await call(client, "export_memories", tags=["walk"], **({"cursor": cursor} if cursor else {}))
            assert page["count"] <= MAX_PAGE_ITEMS
            titles += [m["title"] for m in page["memories"]]
            pages += 1
            cursor = page.get("nextCursor")
            if not cursor:
                break
        assert titles == [f"m{i}" for i in range(1_050)] and pages == 11
        important = await call(client, "recall", tags=["odd-1"], mode="important", limit=100)
        rest = await call(client, "recall", tags=["odd-1"], mode="important", limit=100, cursor=important["nextCursor"])
        seen = [m["title"] for m in important["memories"] + rest["memories"]]
        assert len(set(seen)) == 200 and all(int(t[1:]) % 2 == 1 for t in seen)


async def test_unicode_round_trips_unchanged(connect: Connect) -> None:
    async with connect() as client:
        stored = await call(
            client, "remember", title=UNICODE, content=UNICODE * 100, tags=[UNICODE], metadata={UNICODE: UNICODE}
        )
        (memory,) = (await call(client, "recall", query="café", tags=[UNICODE]))["memories"]
        assert memory["id"] == stored["id"] and memory["content"] == UNICODE * 100
        assert memory["title"] == UNICODE and memory["metadata"] == {UNICODE: UNICODE}


BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("remember", {"title": "t", "content": "x" * (MAX_CONTENT + 1)}, str(MAX_CONTENT)),
    ("remember", {"title": "t", "content": "\x01" * 60_000}, str(MAX_MEMORY_BYTES)),  # 6 bytes a character as JSON
    ("remember", {"title": "t", "content": "c", "metadata": {"k": "v" * 40_000}}, "32768"),
    ("remember", {"title": "t" * 301, "content": "c"}, "300"),
    ("recall", {"limit": MAX_PAGE_ITEMS + 1}, str(MAX_PAGE_ITEMS)),
    ("recall", {"cursor": "not-a-cursor"}, "not a nextCursor"),
    ("recall", {"mode": "random"}, "mode"),
    ("remember", {"title": "t", "content": "c", "importance": 7}, "importance"),
    ("end_session", {"session_id": 42}, "no session with id 42"),
]


async def test_values_over_a_limit_are_refused_naming_the_limit_and_nothing_is_cut(connect: Connect) -> None:
    async with connect() as client:
        for tool, arguments, message in BAD_CALLS:
            result = await client.call_tool(tool, arguments)
            (content,) = result.content
            assert isinstance(content, TextContent), content
            assert result.is_error and message in content.text, (tool, message, content.text)
        assert (await call(client, "memory_stats"))["total_memories"] == 0
        first = await call(client, "recall", tags=[], limit=1)
        other = await client.call_tool("recall", {"query": "other", "cursor": first.get("nextCursor") or "e30"})
        assert other.is_error  # a cursor is refused with other arguments than it was given for


async def test_limits_and_annotations_are_in_the_tool_list(connect: Connect) -> None:
    async with connect() as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["remember"].input_schema["properties"]["content"]["maxLength"] == MAX_CONTENT
        assert tools["recall"].input_schema["properties"]["limit"]["maximum"] == MAX_PAGE_ITEMS
        output_schema = tools["export_memories"].output_schema
        assert output_schema is not None and "nextCursor" in output_schema["properties"]
        hints = {name: tool.annotations for name, tool in tools.items()}
        for name in ("recall", "export_memories", "memory_stats"):
            assert (annotations := hints[name]) is not None and annotations.read_only_hint is True, name
        assert (consolidate := hints["consolidate"]) is not None and consolidate.destructive_hint is True
        remember = hints["remember"]
        assert remember is not None and remember.read_only_hint is False and remember.destructive_hint is False


# -- HTTP: authentication and Host ------------------------------------------------------


def post(url: str, headers: dict[str, str]) -> httpx2.Response:
    client = {"name": "test", "version": "1"}
    params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": client}
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
    base = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    with httpx2.Client(timeout=30) as http:
        return http.post(url, json=body, headers={**base, **headers})


def test_http_needs_the_token_and_a_loopback_host(tmp_path: Path) -> None:
    with cortex_processes.http_server(tmp_path) as server:
        mode = stat.S_IMODE(os.stat(server.token_file).st_mode)
        assert mode == 0o600 and len(server.token) >= 64
        assert post(server.url, {}).status_code == 401
        assert post(server.url, {"Authorization": "Bearer " + "0" * 64}).status_code == 401
        good = {"Authorization": f"Bearer {server.token}"}
        assert post(server.url, {**good, "Host": "evil.example:80"}).status_code == 421
        answered = post(server.url, {**good, "Host": f"localhost:{server.port}"})
        assert answered.status_code == 200
        token = server.token
    with cortex_processes.http_server(tmp_path) as again:  # the same token file: the same token
        assert again.token == token


def test_an_allowed_host_name_is_answered(tmp_path: Path) -> None:
    with cortex_processes.http_server(tmp_path, "--allow-host", "head.cluster") as server:
        good = {"Authorization": f"Bearer {server.token}"}
        assert post(server.url, {**good, "Host": "head.cluster:8765"}).status_code == 200


@pytest.mark.parametrize("problem", ["group-readable", "symlink"])
def test_an_unsafe_token_file_is_refused_in_one_line(tmp_path: Path, problem: str, server_env) -> None:
    token_file = tmp_path / "cortex.token"
    if problem == "group-readable":
        token_file.write_text("a" * 64)
        token_file.chmod(0o640)
    else:
        (tmp_path / "elsewhere").write_text("a" * 64)
        token_file.symlink_to(tmp_path / "elsewhere")
    port = str(cortex_processes.free_port())
    serve = ["serve", "--db", str(tmp_path / "x.db"), "--http", port, "--token-file", str(token_file)]
    done = subprocess.run(
        [sys.executable, "-m", "koderz.cortex", *serve],
        env=server_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert str(token_file) in done.stderr and not (tmp_path / "x.db").exists()


@pytest.mark.slow
async def test_ten_thousand_memories_walk_in_pages(connect: Connect) -> None:
    async with connect() as client:
        for start in range(0, 10_000, 500):
            batch = [
                {"title": f"m{i}", "content": f"{UNICODE} {i}", "tags": ["many"]} for i in range(start, start + 500)
            ]
            await call(client, "remember_batch", memories=batch)
        titles, cursor = [], None
        while True:
            page = await call(client, "export_memories", tags=["many"], **({"cursor": cursor} if cursor else {}))
            titles += [m["title"] for m in page["memories"]]
            cursor = page.get("nextCursor")
            if not cursor:
                break
        assert titles == [f"m{i}" for i in range(10_000)]
        assert (await call(client, "memory_stats"))["total_memories"] == 10_000
