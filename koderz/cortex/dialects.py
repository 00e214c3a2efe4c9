"""The MCP memory servers koderz speaks to, recognised by their tool schemas (docs/cortex.md).

``choose(tools)`` returns the first dialect whose every call the server's tools accept, or the
problems found with each (the preflight refuses the server with them in one line):
``CortexTools`` (koderz's own server) and ``GraphTools`` (the reference knowledge-graph server
``@modelcontextprotocol/server-memory``: a memory is an entity whose observations hold its
fields, a tag an entity with a ``tagged`` relation; filters and order run in the client). A
dialect's methods take ``call(tool, arguments) -> structured result`` from the client, which
owns the connection, retries and fault counting.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, ClassVar

from koderz.cortex.db import fts_query

Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
Schema = dict[str, Any]
# argument -> the JSON types the client may send for it
Signature = dict[str, set[str]]


def resolve(schema: Schema, root: Schema) -> Schema:
    """``schema`` with a local ``$ref`` (``#/$defs/X``, ``#/definitions/X``) replaced by its target."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return target if isinstance(target, dict) else {}
    return schema


def _types(schema: Schema) -> set[str]:
    """The JSON types a (sub)schema admits (``type``, or the union of ``anyOf``/``oneOf``)."""
    found = schema.get("type")
    if isinstance(found, str):
        return {found, "number"} if found == "integer" else {found}
    if isinstance(found, list):
        return set(found)
    union = [_types(s) for key in ("anyOf", "oneOf") for s in schema.get(key, [])]
    return set().union(*union) if union else {"any"}


def signature_problems(name: str, tool: Any, sends: Signature, reads: tuple[str, ...] = ()) -> list[str]:
    """What in ``tool``'s schemas refuses the arguments the client sends or lacks what it reads (one line)."""
    if tool is None:
        return [f"no {name!r} tool"]
    schema = tool.input_schema or {}
    properties = schema.get("properties", {})
    missing = [argument for argument in sends if argument not in properties]
    wrong = [
        f"{argument} is {'/'.join(sorted(accepted))}"
        for argument, types in sends.items()
        if argument in properties
        and "any" not in (accepted := _types(resolve(properties[argument], schema)))
        and not types & accepted
    ]
    required = [argument for argument in schema.get("required", []) if argument not in sends]
    unread = [key for key in reads if key not in (tool.output_schema or {}).get("properties", {})]
    found = {"takes no": missing, "has": wrong, "requires": required, "returns no": unread}
    parts = [f"{label} {', '.join(items)}" for label, items in found.items() if items]
    return [f"{name} {'; '.join(parts)}"] if parts else []


class _Tools:
    """A dialect is known by the tools it calls: name -> (argument types it sends, result keys it reads)."""

    SIGNATURES: ClassVar[dict[str, tuple[Signature, tuple[str, ...]]]]

    def problems(self, tools: dict[str, Any]) -> list[str]:
        return [
            p
            for name, (sends, reads) in self.SIGNATURES.items()
            for p in signature_problems(name, tools.get(name), sends, reads)
        ]


_MEMORY = {
    "title": {"string"},
    "content": {"string"},
    "category": {"string"},
    "tags": {"array"},
    "importance": {"number"},
    "metadata": {"object"},
}
_PAGED = {"tags": {"array"}, "category": {"string"}, "limit": {"integer"}, "cursor": {"string"}}


class CortexTools(_Tools):
    """koderz's own server: one tool per operation, listings paged with ``cursor``/``nextCursor``."""

    name = "koderz cortex"
    consolidates = True
    SIGNATURES = {  # noqa: RUF012 - read only
        "remember": (_MEMORY, ("id",)),
        "remember_batch": ({"memories": {"array"}}, ("ids",)),
        "recall": ({"query": {"string"}, "mode": {"string"}, **_PAGED}, ("memories", "nextCursor")),
        "export_memories": (_PAGED, ("memories", "nextCursor")),
        "start_session": ({"context": {"string"}}, ("session_id",)),
        "end_session": ({"session_id": {"integer"}, "summary": {"string"}}, ()),
        "memory_stats": ({}, ("total_memories",)),
        "consolidate": ({"dry_run": {"boolean"}}, ("removed",)),
    }

    async def remember_batch(self, call: Call, rows: list[dict[str, Any]]) -> list[str]:
        if len(rows) == 1:
            data = await call("remember", rows[0])
            return [str(data["id"])] if data.get("id") is not None else []
        return [str(i) for i in (await call("remember_batch", {"memories": rows})).get("ids", [])]

    async def _walk(self, call: Call, tool: str, arguments: dict[str, Any], wanted: int | None) -> list[dict[str, Any]]:
        """Follow ``nextCursor`` until ``wanted`` memories (or all, for ``None``)."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while wanted is None or len(found) < wanted:
            page = {**arguments, **({"cursor": cursor} if cursor else {})}
            if wanted is not None:
                page["limit"] = min(100, wanted - len(found))
            data = await call(tool, page)
            found += data.get("memories", [])
            cursor = data.get("nextCursor")
            if not cursor:
                break
        return found

    async def recall(
        self, call: Call, query: str, tags: list[str], category: str | None, limit: int, mode: str
    ) -> list[dict[str, Any]]:
        arguments: dict[str, Any] = {"query": query, "mode": mode}
        arguments |= {k: v for k, v in (("tags", tags), ("category", category)) if v}
        return await self._walk(call, "recall", arguments, max(1, limit))

    async def export(self, call: Call, tags: list[str], category: str | None) -> list[dict[str, Any]]:
        arguments = {k: v for k, v in (("tags", tags), ("category", category)) if v}
        return await self._walk(call, "export_memories", arguments, None)

    async def start_session(self, call: Call, context: str) -> str | None:
        data = await call("start_session", {"context": context})
        return None if data.get("session_id") is None else str(data["session_id"])

    async def end_session(self, call: Call, session_id: str, summary: str) -> None:
        if str(session_id).isdigit():
            await call("end_session", {"session_id": int(session_id), "summary": summary})

    async def stats(self, call: Call) -> dict[str, Any]:
        return await call("memory_stats", {})


MEMORY_PREFIX = "koderz-memory:"
TAG_PREFIX = "koderz-tag:"
SESSION_PREFIX = "koderz-session:"
_FIELDS = ("title", "content", "category", "tags", "importance", "metadata", "created_at")
_JSON_FIELDS = ("tags", "importance", "metadata")
_ENTITY = {"entities": {"array"}}


def _unique_name(prefix: str) -> str:
    return f"{prefix}{time.time_ns():020d}-{secrets.token_hex(4)}"


def _observations(row: dict[str, Any], created_at: str) -> list[str]:
    values = {**row, "created_at": created_at}
    return [
        f"{key}: {json.dumps(values[key], ensure_ascii=False) if key in _JSON_FIELDS else values[key]}"
        for key in _FIELDS
        if key != "category"
    ]


def _memory(entity: dict[str, Any]) -> dict[str, Any] | None:
    """A koderz memory from its entity; ``None`` for any other entity."""
    name = str(entity.get("name", ""))
    if not name.startswith(MEMORY_PREFIX):
        return None
    fields: dict[str, Any] = {"id": name, "category": entity.get("entityType", "")}
    for observation in entity.get("observations", []):
        key, sep, value = str(observation).partition(": ")
        if sep and key in _FIELDS and key not in fields:
            try:
                fields[key] = json.loads(value) if key in _JSON_FIELDS else value
            except ValueError:
                fields[key] = value
    return {"title": "", "content": "", "tags": [], "importance": 0.5, "metadata": {}, "created_at": ""} | fields


def _words(text: str) -> list[str]:
    return [w.strip('"').lower() for w in fts_query(text).split()]


class GraphTools(_Tools):
    """The reference knowledge-graph server (``@modelcontextprotocol/server-memory``); see the module doc."""

    name = "knowledge graph (@modelcontextprotocol/server-memory)"
    consolidates = False
    SIGNATURES = {  # noqa: RUF012 - read only
        "create_entities": (_ENTITY, ()),
        "create_relations": ({"relations": {"array"}}, ()),
        "add_observations": ({"observations": {"array"}}, ()),
        "search_nodes": ({"query": {"string"}}, ()),
    }

    def problems(self, tools: dict[str, Any]) -> list[str]:
        if problems := super().problems(tools):
            return problems
        root = tools["create_entities"].input_schema
        entity = resolve(root["properties"]["entities"].get("items", {}), root)
        return signature_problems(
            "create_entities.entities[]",
            SimpleNamespace(input_schema={**entity, "$defs": root.get("$defs", {})}, output_schema=None),
            {"name": {"string"}, "entityType": {"string"}, "observations": {"array"}},
        )

    async def remember_batch(self, call: Call, rows: list[dict[str, Any]]) -> list[str]:
        now = datetime.now(UTC).isoformat()
        names = [_unique_name(MEMORY_PREFIX) for _ in rows]
        tags = sorted({tag for row in rows for tag in row["tags"]})
        entities = [
            {"name": name, "entityType": row["category"], "observations": _observations(row, now)}
            for name, row in zip(names, rows, strict=True)
        ]
        entities += [{"name": TAG_PREFIX + tag, "entityType": "koderz-tag", "observations": []} for tag in tags]
        await call("create_entities", {"entities": entities})
        relations = [
            {"from": name, "to": TAG_PREFIX + tag, "relationType": "tagged"}
            for name, row in zip(names, rows, strict=True)
            for tag in row["tags"]
        ]
        if relations:
            await call("create_relations", {"relations": relations})
        return names

    async def _matching(self, call: Call, query: str, tags: list[str], category: str | None) -> list[dict[str, Any]]:
        """Memories with every tag, the category and every word, oldest first."""
        words = _words(query)
        probe = max(tags, key=len) if tags else max(words, key=len) if words else MEMORY_PREFIX
        data = await call("search_nodes", {"query": probe})
        found = []
        for entity in data.get("entities", []):
            memory = _memory(entity)
            if memory is None or not set(tags) <= set(memory["tags"]) or category not in (None, memory["category"]):
                continue
            text = f"{memory['title']} {memory['content']} {' '.join(memory['tags'])}".lower()
            if all(word in text for word in words):
                found.append(memory)
        return sorted(found, key=lambda m: m["id"])

    async def recall(
        self, call: Call, query: str, tags: list[str], category: str | None, limit: int, mode: str
    ) -> list[dict[str, Any]]:
        found = (await self._matching(call, query if mode == "search" else "", tags, category))[::-1]
        if mode == "important":
            found.sort(key=lambda m: -float(m["importance"]))
        return found[: max(1, limit)]

    async def export(self, call: Call, tags: list[str], category: str | None) -> list[dict[str, Any]]:
        return await self._matching(call, "", tags, category)

    async def start_session(self, call: Call, context: str) -> str | None:
        name = _unique_name(SESSION_PREFIX)
        observations = [f"context: {context}", f"started_at: {datetime.now(UTC).isoformat()}"]
        entity = {"name": name, "entityType": "koderz-session", "observations": observations}
        await call("create_entities", {"entities": [entity]})
        return name

    async def end_session(self, call: Call, session_id: str, summary: str) -> None:
        contents = [f"summary: {summary}", f"ended_at: {datetime.now(UTC).isoformat()}"]
        await call("add_observations", {"observations": [{"entityName": session_id, "contents": contents}]})

    async def stats(self, call: Call) -> dict[str, Any]:
        memories = await self._matching(call, "", [], None)
        found = (await call("search_nodes", {"query": SESSION_PREFIX})).get("entities", [])
        sessions = [s for s in found if str(s.get("name", "")).startswith(SESSION_PREFIX)]
        ended = sum(any(str(o).startswith("ended_at: ") for o in s.get("observations", [])) for s in sessions)
        return {
            "total_memories": len(memories),
            "by_category": dict(Counter(m["category"] for m in memories)),
            "sessions": len(sessions),
            "open_sessions": len(sessions) - ended,
        }


Dialect = CortexTools | GraphTools
DIALECTS: tuple[Dialect, ...] = (CortexTools(), GraphTools())


def choose(tools: dict[str, Any]) -> tuple[Dialect | None, str]:
    """The first dialect the server's tools fit, or ``None`` and why none fits (one line)."""
    reasons = []
    for dialect in DIALECTS:
        problems = dialect.problems(tools)
        if not problems:
            return dialect, ""
        shown = "; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")
        reasons.append(f"as {dialect.name}: {shown}")
    return None, " | ".join(reasons)
