"""``CortexConfig``: the schema of the Hydra config group ``cortex`` (every default; docs/cortex.md).

``write_buffer`` > 0 (MCP modes): ``remember`` queues and returns ``None``; the queue goes out
in one ``remember_batch`` when full, every ``flush_interval`` seconds and on close. ``timeout``:
the MCP call timeout, and for ``local`` how long a write waits for another process's lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MODES = ("local", "embedded", "external", "off")
MCP_MODES = ("embedded", "external")


@dataclass
class CortexConfig:
    mode: str = "local"
    persistent: bool = True
    db: str = "outputs/cortex.db"
    command: str | None = None
    args: list[str] = field(default_factory=list)
    url: str | None = None
    token_file: str | None = None
    timeout: float = 30.0
    write_buffer: int = 0
    flush_interval: float = 1.0
