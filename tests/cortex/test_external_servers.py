"""``cortex=external``: the preflight checks tool schemas; the reference knowledge-graph server works.

The knowledge-graph test runs the real ``@modelcontextprotocol/server-memory`` from the npm
registry (slow; skipped without ``npx`` or the registry).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from koderz.cortex import CortexConfig, MemoryRecord, open_memory_store
from koderz.cortex.client import CortexClient
from koderz.errors import MemoryStoreError

GRAPH_SERVER = "@modelcontextprotocol/server-memory@2026.8.31"

OTHER_REMEMBER = """
import sys
from mcp.server.mcpserver import MCPServer
s = MCPServer("other-memory")
print("other-memory: starting", file=sys.stderr, flush=True)
@s.tool()
def remember(text: str, priority: int) -> str:
    return "ok"
s.run("stdio")
"""


def external(tmp_path: Path, script: str) -> CortexConfig:
    path = tmp_path / "server.py"
    path.write_text(script)
    return CortexConfig(mode="external", command=sys.executable, args=[str(path)], timeout=30)


async def test_a_server_whose_remember_takes_other_arguments_is_refused_in_one_line(tmp_path, capfd, caplog) -> None:
    caplog.set_level(logging.INFO)
    with pytest.raises(MemoryStoreError) as refused:
        async with open_memory_store(external(tmp_path, OTHER_REMEMBER), "r"):
            pass
    message = str(refused.value)
    assert (
        "\n" not in message and "remember takes no title, content" in message and "requires text, priority" in message
    )
    assert "other-memory: starting" not in capfd.readouterr().err  # the server's stderr is not on the console
    assert any("other-memory: starting" in r.getMessage() and r.name == "cortex-server" for r in caplog.records)


def test_the_run_stops_before_it_starts_with_exit_2(tmp_path, server_env) -> None:
    cfg = external(tmp_path, OTHER_REMEMBER)
    args = [sys.executable, "-m", "koderz", "end=1", "tracking=off", "cortex=external"]
    args += [f"cortex.command={cfg.command}", f"cortex.args=[{cfg.args[0]}]", "hydra.run.dir=run"]
    done = subprocess.run(args, cwd=tmp_path, env=server_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no supported memory server" in done.stderr + done.stdout
    assert not (tmp_path / "run" / "results.jsonl").exists()


@pytest.fixture
def graph_server(tmp_path: Path, server_env: dict[str, str]) -> tuple[CortexConfig, dict[str, str]]:
    if shutil.which("npx") is None:
        pytest.skip("npx is not installed")
    env = {**server_env, "npm_config_cache": str(tmp_path / "npm-cache"), "npm_config_update_notifier": "false"}
    try:
        probe = subprocess.run(["npm", "view", GRAPH_SERVER, "version"], env=env, capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("npm registry unreachable")
    if probe.returncode != 0:
        pytest.skip("npm registry unreachable")
    graph = tmp_path / "graph.jsonl"
    return CortexConfig(mode="external", command="npx", args=["-y", GRAPH_SERVER], timeout=120), env | {
        "MEMORY_FILE_PATH": str(graph)
    }


@pytest.mark.slow
async def test_the_reference_knowledge_graph_server_keeps_koderz_memories(graph_server, monkeypatch) -> None:
    cfg, env = graph_server
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    async with open_memory_store(cfg, "r") as store:
        assert isinstance(store, CortexClient)
        assert store.dialect.name.startswith("knowledge graph")
        session = await store.start_session("run r")
        await store.remember(
            MemoryRecord(
                "spec HumanEval/0", "sort the list 😀", category="spec", tags=("spec", "HumanEval/0"), importance=0.9
            )
        )
        await store.remember_batch(
            [
                MemoryRecord(
                    f"attempt {i}",
                    f"def f(): return {i}",
                    category="attempt",
                    tags=("attempt", "HumanEval/0"),
                    metadata={"i": i},
                )
                for i in range(3)
            ]
        )
        (spec,) = await store.recall(tags=["spec", "HumanEval/0"], mode="recent", limit=1)
        assert spec["content"] == "sort the list 😀" and spec["tags"] == ["spec", "HumanEval/0"]
        assert [m["title"] for m in await store.recall("return 1", tags=["attempt"])] == ["attempt 1"]
        exported = await store.export(tags=["HumanEval/0"])
        assert [m["title"] for m in exported] == ["spec HumanEval/0", "attempt 0", "attempt 1", "attempt 2"]
        assert exported[1]["metadata"] == {"i": 0} and exported[0]["importance"] == 0.9
        assert (await store.recall(mode="important", limit=1))[0]["title"] == "spec HumanEval/0"
        assert session is not None
        await store.end_session(session, "done")
        stats = await store.stats()
    assert stats["total_memories"] == 4 and stats["sessions"] == 1 and stats["open_sessions"] == 0
    assert store.lost_writes == 0
    async with open_memory_store(replace(cfg, persistent=False), "again") as again:  # a new server process, same file
        assert len(await again.export(tags=["attempt"])) == 3
