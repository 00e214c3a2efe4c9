"""Cortex: the experiment memory, a local SQLite file or over MCP (docs/cortex.md).

``open_memory_store(cfg, run_id)`` opens the ``MemoryStore`` the ``cortex`` config group names
(preflight on enter: ``MemoryStoreError`` in one line, bad keys ``ConfigError``); ``preflight(cfg)``
checks it without keeping it. ``mcp`` is imported only when an MCP store (``embedded``,
``external``) is opened. ``python -m koderz.cortex`` serves the file or reads it (``cli.py``).
"""

from koderz.cortex.config import CortexConfig
from koderz.cortex.factory import open_memory_store, preflight
from koderz.cortex.store import MemoryRecord, MemoryStore, NullStore

__all__ = ["CortexConfig", "MemoryRecord", "MemoryStore", "NullStore", "open_memory_store", "preflight"]
