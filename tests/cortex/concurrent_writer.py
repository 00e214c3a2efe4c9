"""One koderz-like writer process: ``python concurrent_writer.py DB WRITER COUNT GO_FILE``.

Opens the default (local) store on DB the way a run does (``defer=True``), waits until
GO_FILE exists (so every writer starts at once; gives up after 60 s), then writes COUNT
records tagged ``writer-WRITER`` one by one inside a session, like a run's problems.
Prints the store's ``lost_writes``.
"""

from __future__ import annotations

import asyncio
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


async def write(db: str, writer: str, count: int) -> int:
    async with open_memory_store(CortexConfig(db=db), f"writer-{writer}", defer=True) as store:
        session = await store.start_session(f"writer {writer}")
        for i in range(count):
            record = MemoryRecord(f"w{writer} r{i}", f"content {writer} {i}", tags=(f"writer-{writer}", "record"))
            await store.remember(record)
        if session:
            await store.end_session(session, f"writer {writer} done")
    print(store.lost_writes)
    return 0


if __name__ == "__main__":
    if not wait_for(Path(sys.argv[4])):
        sys.exit("no go file within 60 s")
    sys.exit(asyncio.run(write(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
