"""Open the ``MemoryStore`` the ``cortex`` config group names (``CortexConfig`` or its DictConfig).

``off`` gives ``NullStore`` and ``local`` (the default) a ``LocalStore``; neither imports ``mcp``.
``embedded``/``external`` give the MCP client. Entering runs the preflight (open the file, or
start/reach the server and check its tools): ``MemoryStoreError`` in one line if it fails,
``ConfigError`` for bad keys.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from koderz.cortex.config import MCP_MODES, MODES
from koderz.cortex.local import LocalStore
from koderz.cortex.store import MemoryStore, NullStore
from koderz.errors import ConfigError, MemoryStoreError

if TYPE_CHECKING:
    from koderz.cortex.client import CortexClient

logger = logging.getLogger(__name__)


def preload(cfg: Any) -> None:
    """Import what the store of ``cfg`` needs (the MCP SDK only for MCP modes); call in a thread."""
    if cfg.mode in MCP_MODES:
        importlib.import_module("koderz.cortex.client")


def _client(cfg: Any) -> CortexClient:
    """The (unconnected) MCP client for an ``embedded`` or ``external`` config."""
    from koderz.cortex.client import CortexClient, ServerTarget

    if cfg.mode == "embedded":
        target = ServerTarget.embedded(cfg.db)
    elif cfg.url and cfg.command:
        raise ConfigError("cortex=external takes cortex.command or cortex.url, not both")
    elif cfg.url:
        if not str(cfg.url).startswith(("http://", "https://")):
            raise ConfigError(f"cortex.url={cfg.url!r} is not an http(s) URL")
        from koderz.cortex.auth import token_for_client

        target = ServerTarget(url=str(cfg.url), token=token_for_client(cfg.token_file))
    elif cfg.command:
        target = ServerTarget(str(cfg.command), tuple(str(a) for a in cfg.args or ()), dict(os.environ))
    else:
        raise ConfigError("cortex=external needs cortex.command (stdio) or cortex.url (streamable HTTP)")
    if cfg.write_buffer < 0:
        raise ConfigError(f"cortex.write_buffer={cfg.write_buffer!r} must be >= 0")
    return CortexClient(
        target,
        persistent=bool(cfg.persistent),
        timeout=float(cfg.timeout),
        write_buffer=int(cfg.write_buffer),
        flush_interval=float(cfg.flush_interval),
    )


async def preflight(cfg: Any) -> None:
    """Open the configured store once and close it; ``MemoryStoreError`` if it cannot be used."""
    async with open_memory_store(cfg, "preflight"):
        pass


@asynccontextmanager
async def open_memory_store(cfg: Any, run_id: str, *, defer: bool = False) -> AsyncIterator[MemoryStore]:
    """The run's ``MemoryStore``. ``defer=True``: a local file that cannot be opened costs the
    memory, not the run (one warning, writes count in ``lost_writes``); koderz's own embedded
    server opens in the background. External servers are always checked before the run starts."""
    if cfg.mode == "off":
        yield NullStore()
        return
    if cfg.mode not in MODES:
        raise ConfigError(f"cortex.mode={cfg.mode!r} is not one of {', '.join(MODES)}")
    if cfg.timeout <= 0:
        raise ConfigError(f"cortex.timeout={cfg.timeout!r} must be > 0")
    store: LocalStore | CortexClient
    if cfg.mode == "local":
        store = LocalStore(cfg.db, timeout=float(cfg.timeout))
        try:
            await store.connect()
        except MemoryStoreError as exc:
            if not defer:
                await store.aclose()
                raise
            logger.warning("cortex: the run goes on without memory: %s", exc)
    elif defer and cfg.mode == "embedded":
        await asyncio.to_thread(preload, cfg)  # the MCP SDK's import must not hold up the event loop
        store = _client(cfg)
        store.connect_in_background()  # writes queue until the server is up
    else:
        store = _client(cfg)
        await store.connect()
        logger.info(
            "cortex: run %s uses %s (%s)", run_id, store.target.label, "persistent" if store.persistent else "ephemeral"
        )
    try:
        yield store
    finally:
        await store.aclose()
        if store.lost_writes:
            logger.warning("cortex: run %s lost %d memory writes", run_id, store.lost_writes)
