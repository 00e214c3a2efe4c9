"""Cortex: the experiment memory, over MCP.

Public API (``mcp`` is imported only when a non-``off`` store is opened):

- ``open_memory_store(cfg, run_id) -> AsyncContextManager[MemoryStore]`` — from the
  ``cortex`` config group (``CortexConfig``); preflight on enter raises
  ``MemoryStoreError`` (one line), bad keys raise ``ConfigError``.
- ``preflight(cfg)`` — the same check without keeping the connection.
- ``MemoryStore``, ``MemoryRecord``, ``NullStore`` — see ``store.py``.
- ``CortexClient`` (``koderz.cortex.client``) — the MCP implementation; beyond the
  protocol it has ``flush()``, ``stats()``, ``consolidate(dry_run)``.
- ``python -m koderz.cortex serve --db PATH [--http HOST:PORT]`` — the embedded
  server (``koderz.cortex.server``; tools documented there).
"""

from koderz.cortex.config import CortexConfig
from koderz.cortex.factory import open_memory_store, preflight
from koderz.cortex.store import MemoryRecord, MemoryStore, NullStore

__all__ = ["CortexConfig", "MemoryRecord", "MemoryStore", "NullStore", "open_memory_store", "preflight"]
