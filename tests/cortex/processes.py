"""Finding processes a test started itself (never by a pattern other users could match)."""

from __future__ import annotations

import os
from pathlib import Path


def own_children(marker: str) -> list[int]:
    """Pids of this test process's own children whose command line contains ``marker``.

    Only processes this process started (its run's server, say) are ever found, so a
    test signals nothing another user or test owns.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile, or not readable
        if ppid == os.getpid() and marker in command:
            found.append(int(entry.name))
    return found
