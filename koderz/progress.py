"""Live progress: one updating line on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

log = logging.getLogger("koderz.progress")


class Progress:
    """done/total, passes, pass rate and ETA, updated as problems finish."""

    def __init__(self, total: int, stream: Any = None) -> None:
        self.total = total
        self.done = self.passed = self.resumed = 0
        self.started = time.perf_counter()
        self.stream = stream or sys.stderr
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, record: dict[str, Any], resumed: bool = False) -> None:
        self.done += 1
        self.passed += bool(record["passed"])
        self.resumed += resumed
        if resumed:
            return
        line = self.line()
        if self.live:
            self.stream.write("\r\033[K" + line)
            self.stream.flush()
        else:
            log.info(
                "%s %s (%s, %d attempts) | %s",
                record["task_id"],
                "PASS" if record["passed"] else "FAIL",
                record["status"],
                record["attempts"],
                line,
            )

    def line(self) -> str:
        elapsed = time.perf_counter() - self.started
        fresh = self.done - self.resumed
        remaining = self.total - self.done
        eta = elapsed / fresh * remaining if fresh else 0.0
        rate = 100.0 * self.passed / self.done if self.done else 0.0
        return f"[{self.done}/{self.total}] passed {self.passed} ({rate:.1f}%) ETA {eta:.0f}s"

    def close(self) -> None:
        if self.live and self.done:
            self.stream.write("\n")
            self.stream.flush()
