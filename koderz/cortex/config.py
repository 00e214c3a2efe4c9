"""``CortexConfig``: the schema of the Hydra config group ``cortex`` (it holds every default).

Modes (``cortex.mode``: local, embedded, external, off) are described in docs/cortex.md.

``write_buffer`` > 0 (MCP modes) turns on write-behind: ``remember`` queues records and
returns ``None``; they are sent with ``remember_batch`` when the buffer holds that many,
every ``flush_interval`` seconds, and on close. ``timeout`` is the MCP call timeout, and
for ``local`` how long a write waits for another process's write (SQLite busy timeout).
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
