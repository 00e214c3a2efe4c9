"""Cortex: the experiment memory, a local SQLite file or over MCP (docs/cortex.md).

``open_memory_store(cfg, run_id)`` opens the ``MemoryStore`` the ``cortex`` config names;
``python -m koderz.cortex`` serves the file or reads it (``cli.py``).
"""

from koderz.cortex.config import CortexConfig
from koderz.cortex.factory import open_memory_store, preflight
from koderz.cortex.store import MemoryRecord, MemoryStore, NullStore

__all__ = ["CortexConfig", "MemoryRecord", "MemoryStore", "NullStore", "open_memory_store", "preflight"]
