"""One koderz-like writer process: ``python tests/support/cortex_writer.py STORE WRITER COUNT GO_FILE``.

STORE is a SQLite path (the default local store) or an ``http://`` URL of a shared
``serve --http`` server (``cortex=external``, write buffer 64 like ``cortex=persistent``; its
token from ``KODERZ_CORTEX_TOKEN_FILE``).
The writer opens the store the way a run does (``defer=True``) once GO_FILE exists (so
every writer starts at once; it gives up after 60 s), then writes COUNT records tagged
``writer-WRITER`` one by one inside a session, like a run's problems. Prints JSON:
``{"lost_writes": N, "seconds": S}`` (S from GO_FILE seen to the store closed).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from koderz.cortex import CortexConfig, MemoryRecord, open_memory_store


def wait_for(go_file: Path) -> bool:
    deadline = time.monotonic() + 60
    while not go_file.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def config(store: str) -> CortexConfig:
    if store.startswith("http://"):
        return CortexConfig(mode="external", url=store, write_buffer=64)
    return CortexConfig(db=store)


async def write(store_at: str, writer: str, count: int) -> int:
    async with open_memory_store(config(store_at), f"writer-{writer}", defer=True) as store:
        session = await store.start_session(f"writer {writer}")
        for i in range(count):
            record = MemoryRecord(f"w{writer} r{i}", f"content {writer} {i}", tags=(f"writer-{writer}", "record"))
            await store.remember(record)
        if session:
            await store.end_session(session, f"writer {writer} done")
    return store.lost_writes


if __name__ == "__main__":
    if not wait_for(Path(sys.argv[4])):
        sys.exit("no go file within 60 s")
    start = time.perf_counter()
    lost = asyncio.run(write(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    print(json.dumps({"lost_writes": lost, "seconds": time.perf_counter() - start}))
