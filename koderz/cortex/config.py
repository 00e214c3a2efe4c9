"""``CortexConfig``: the schema of the Hydra config group ``cortex``.

Modes (``cortex.mode``):

- ``embedded`` — koderz's own server (``python -m koderz.cortex serve --db <db>``)
  started by the client; ``persistent=true`` keeps ONE connection for the whole run
  (``conf/cortex/persistent.yaml``, the default), ``persistent=false`` starts a new
  server process per operation (``conf/cortex/ephemeral.yaml``, the old behaviour).
- ``external`` — any MCP server: ``command``/``args`` over stdio, or ``url`` over
  streamable HTTP (e.g. ``http://127.0.0.1:8765/mcp`` from ``serve --http``).
  ``persistent`` applies here too.
- ``off`` — ``NullStore``, nothing is stored and ``mcp`` is never imported.

``write_buffer`` > 0 turns on write-behind: ``remember`` queues records and returns
``None``; they are sent with ``remember_batch`` when the buffer holds that many, every
``flush_interval`` seconds, and on close.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MODES = ("embedded", "external", "off")


@dataclass
class CortexConfig:
    mode: str = "embedded"
    persistent: bool = True
    db: str = "outputs/cortex.db"
    command: str | None = None
    args: list[str] = field(default_factory=list)
    url: str | None = None
    timeout: float = 30.0
    write_buffer: int = 0
    flush_interval: float = 1.0
