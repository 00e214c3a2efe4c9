"""Cortex: the experiment memory, over MCP.

Public API (``mcp`` is imported only when an MCP store, ``embedded`` or ``external``, is opened):

- ``open_memory_store(cfg, run_id) -> AsyncContextManager[MemoryStore]`` — from the
  ``cortex`` config group (``CortexConfig``); preflight on enter raises
  ``MemoryStoreError`` (one line), bad keys raise ``ConfigError``.
- ``preflight(cfg)`` — the same check without keeping the connection.
- ``MemoryStore``, ``MemoryRecord``, ``NullStore`` — see ``store.py``.
- ``LocalStore`` (``koderz.cortex.local``) — the default: the run writes the SQLite
  file itself (write-behind); also ``flush()`` and ``stats()``.
- ``CortexClient`` (``koderz.cortex.client``) — the MCP implementation; beyond the
  protocol it has ``flush()``, ``stats()``, ``consolidate(dry_run)``. It checks the
  server's tool schemas and speaks to koderz's server or the reference knowledge-graph
  server (``dialects.py``).
- ``limits.py`` — what one memory, request and reply may hold; ``paging.py`` — pages in
  MCP's cursor shape; ``auth.py`` — the shared server's bearer token and Host names.
- ``sanitize`` (``koderz.cortex.sanitize``) — every record is made valid, bounded
  text before it is stored; ``spec_tag`` (``koderz.cortex.specs``) — which stored
  spec may be reused.
- docs/cortex.md — the modes, what the default costs and why.
- ``python -m koderz.cortex serve --db PATH [--http [HOST:]PORT]`` — the embedded
  server (``koderz.cortex.server``; tools documented there); ``export|search|stats --db
  PATH`` read the file for people (``koderz.cortex.cli``).
"""

from koderz.cortex.config import CortexConfig
from koderz.cortex.factory import open_memory_store, preflight
from koderz.cortex.store import MemoryRecord, MemoryStore, NullStore

__all__ = ["CortexConfig", "MemoryRecord", "MemoryStore", "NullStore", "open_memory_store", "preflight"]
