"""Which server dialect a tool list fits (the preflight's schema check), on real tool lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp import Client
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

from koderz.cortex.dialects import CortexTools, GraphTools, choose
from koderz.cortex.server import build_server


async def tools_of(server: MCPServer) -> dict[str, Any]:
    async with Client(server) as client:  # the SDK's in-memory transport
        return {t.name: t for t in (await client.list_tools()).tools}


async def test_koderz_server_is_spoken_to_as_itself(tmp_path: Path) -> None:
    dialect, why = choose(await tools_of(build_server(tmp_path / "c.db")))
    assert isinstance(dialect, CortexTools) and why == ""


class Entity(BaseModel):
    name: str
    entityType: str  # the reference server's spelling
    observations: list[str]


def graph_like() -> MCPServer:
    """The reference knowledge-graph server's tool signatures (same argument names and types)."""
    server = MCPServer("graph")

    @server.tool()
    def create_entities(entities: list[Entity]) -> dict[str, Any]:
        return {"entities": entities}

    @server.tool()
    def create_relations(relations: list[dict[str, str]]) -> dict[str, Any]:
        return {"relations": relations}

    @server.tool()
    def add_observations(observations: list[dict[str, Any]]) -> dict[str, Any]:
        return {"results": []}

    @server.tool()
    def search_nodes(query: str) -> dict[str, Any]:
        return {"entities": [], "relations": []}

    return server


async def test_a_knowledge_graph_is_spoken_to_through_entities() -> None:
    dialect, _ = choose(await tools_of(graph_like()))
    assert isinstance(dialect, GraphTools)


async def test_an_older_koderz_server_without_pages_is_refused_naming_what_is_missing() -> None:
    old = MCPServer("old-cortex")

    @old.tool()
    def recall(query: str = "", limit: int = 10) -> dict[str, Any]:
        return {"memories": []}

    dialect, why = choose(await tools_of(old))
    assert dialect is None
    assert "recall takes no mode, tags, category, cursor" in why and "no 'remember' tool" in why
    assert "no 'create_entities' tool" in why and "\n" not in why
