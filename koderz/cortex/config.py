"""``CortexConfig``: the schema of the Hydra config group ``cortex`` (it holds every default).

Modes (``cortex.mode``):

- ``local`` — the default (``conf/cortex/local.yaml``): the run writes the SQLite file
  ``db`` itself (``LocalStore``): no server process, no MCP SDK; opening and closing
  cost milliseconds. Several runs may share the file.
- ``embedded`` — koderz's own MCP server (``python -m koderz.cortex serve --db <db>``)
  started by the client for this run; ``persistent=true`` keeps ONE connection for the
  whole run (``conf/cortex/persistent.yaml``), ``persistent=false`` starts a new server
  process per operation (``conf/cortex/ephemeral.yaml``, the oldest behaviour).
- ``external`` — an MCP memory server: ``command``/``args`` over stdio, or ``url`` over
  streamable HTTP (e.g. ``http://127.0.0.1:8765/mcp`` from ``serve --http``, the
  shared server of a cluster, which wants its bearer token: ``token_file``, else
  ``KODERZ_CORTEX_TOKEN``/``KODERZ_CORTEX_TOKEN_FILE``, else the default file). koderz's
  own server or the reference ``@modelcontextprotocol/server-memory`` (checked by
  their tool schemas before the run). ``persistent`` applies here too.
- ``off`` — ``NullStore``, nothing is stored and ``mcp`` is never imported.

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
