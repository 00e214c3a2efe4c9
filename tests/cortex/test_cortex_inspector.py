"""The official MCP Inspector CLI lists and calls koderz's Cortex tools (slow; needs npm)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

INSPECTOR = "@modelcontextprotocol/inspector@0.15.0"

pytestmark = pytest.mark.slow


@pytest.fixture
def inspector(tmp_path: Path, server_env: dict[str, str]):
    """Run ``npx <inspector> --cli <python> -m koderz.cortex serve --db X`` with extra args; parsed JSON."""
    if shutil.which("npx") is None:
        pytest.skip("npx is not installed")
    env = {**server_env, "npm_config_cache": str(tmp_path / "npm-cache"), "npm_config_update_notifier": "false"}
    try:
        probe = subprocess.run(["npm", "view", INSPECTOR, "version"], env=env, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("npm registry unreachable")
    if probe.returncode != 0:
        pytest.skip("npm registry unreachable")
    db = tmp_path / "inspector.db"

    def run(*args: str) -> dict:
        done = subprocess.run(
            ["npx", "-y", INSPECTOR, "--cli", sys.executable, "-m", "koderz.cortex", "serve", "--db", str(db), *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return run


def test_inspector_lists_and_calls_the_tools(inspector):
    listed = inspector("--method", "tools/list")
    names = {tool["name"] for tool in listed["tools"]}
    assert {
        "remember",
        "remember_batch",
        "recall",
        "export_memories",
        "start_session",
        "end_session",
        "memory_stats",
        "consolidate",
    } <= names
    assert all("outputSchema" in tool for tool in listed["tools"])

    stored = inspector(
        "--method",
        "tools/call",
        "--tool-name",
        "remember",
        "--tool-arg",
        "title=hello",
        "--tool-arg",
        "content=from the inspector",
        "--tool-arg",
        'tags=["insp"]',
    )
    assert stored["isError"] is False and isinstance(stored["structuredContent"]["id"], int)

    exported = inspector("--method", "tools/call", "--tool-name", "export_memories", "--tool-arg", 'tags=["insp"]')
    (memory,) = exported["structuredContent"]["memories"]
    assert memory["content"] == "from the inspector" and memory["tags"] == ["insp"]
    assert "nextCursor" not in exported["structuredContent"]  # one page holds it all
    assert len(exported["content"]) == 1 and "from the inspector" not in exported["content"][0]["text"]


def test_inspector_sees_annotations_limits_and_pages(inspector):
    tools = {tool["name"]: tool for tool in inspector("--method", "tools/list")["tools"]}
    assert tools["recall"]["annotations"]["readOnlyHint"] is True
    assert tools["consolidate"]["annotations"]["destructiveHint"] is True
    assert tools["remember"]["inputSchema"]["properties"]["content"]["maxLength"] == 100_000
    batch = json.dumps([{"title": f"m{i}", "content": "c", "tags": ["paged"]} for i in range(5)])
    inspector("--method", "tools/call", "--tool-name", "remember_batch", "--tool-arg", f"memories={batch}")
    first = inspector(
        "--method",
        "tools/call",
        "--tool-name",
        "export_memories",
        "--tool-arg",
        'tags=["paged"]',
        "--tool-arg",
        "limit=2",
    )["structuredContent"]
    assert [m["title"] for m in first["memories"]] == ["m0", "m1"] and first["nextCursor"]
    second = inspector(
        "--method",
        "tools/call",
        "--tool-name",
        "export_memories",
        "--tool-arg",
        'tags=["paged"]',
        "--tool-arg",
        "limit=2",
        "--tool-arg",
        f"cursor={first['nextCursor']}",
    )["structuredContent"]
    assert [m["title"] for m in second["memories"]] == ["m2", "m3"]
    refused = inspector("--method", "tools/call", "--tool-name", "recall", "--tool-arg", "limit=500")
    assert refused["isError"] is True and "100" in refused["content"][0]["text"]
