"""The memory-store interface the orchestrator uses (Cortex over MCP, or nothing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class MemoryRecord:
    """One memory to store (the arguments of Cortex's ``remember`` tool)."""

    title: str
    content: str
    category: str = "experiment"
    tags: tuple[str, ...] = ()
    importance: float = 0.5
    metadata: dict[str, Any] = field(default_factory=dict)


class MemoryStore(Protocol):
    """Experiment memory; every method is safe to call concurrently and never fails the run
    (a write that cannot be stored counts in ``lost_writes``)."""

    lost_writes: int
    keeps: bool  # False only for cortex=off: nothing is stored or recalled, so nothing to time

    async def remember(self, record: MemoryRecord) -> str | None: ...

    async def remember_batch(self, records: list[MemoryRecord]) -> list[str]: ...

    async def recall(
        self,
        query: str = "",
        tags: list[str] | None = None,
        category: str | None = None,
        limit: int = 10,
        mode: str = "search",
    ) -> list[dict[str, Any]]: ...

    async def export(self, tags: list[str] | None = None, category: str | None = None) -> list[dict[str, Any]]: ...

    async def start_session(self, context: str) -> str | None: ...

    async def end_session(self, session_id: str, summary: str) -> None: ...

    async def aclose(self) -> None: ...


class NullStore:
    """cortex=off: remembers nothing, recalls nothing."""

    lost_writes = 0
    keeps = False

    async def remember(self, record: MemoryRecord) -> str | None:
        return None

    async def remember_batch(self, records: list[MemoryRecord]) -> list[str]:
        return []

    async def recall(
        self, query: str = "", tags=None, category=None, limit: int = 10, mode: str = "search"
    ) -> list[dict[str, Any]]:
        return []

    async def export(self, tags=None, category=None) -> list[dict[str, Any]]:
        return []

    async def start_session(self, context: str) -> str | None:
        return None

    async def end_session(self, session_id: str, summary: str) -> None:
        return None

    async def aclose(self) -> None:
        return None
