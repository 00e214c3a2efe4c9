"""Live progress: one updating line on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

from koderz.records import ProblemRecord

log = logging.getLogger("koderz.progress")


class Progress:
    """done/total, passes, pass rate and ETA, updated as problems finish.

    ``modes``: name the mode on each line (comparative runs list every task once per mode).
    """

    def __init__(self, total: int, *, modes: bool = False, stream: TextIO | None = None) -> None:
        self.total = total
        self.modes = modes
        self.done = self.passed = self.resumed = self.cached = 0
        self.started = time.perf_counter()
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()

    def update(self, record: ProblemRecord, resumed: bool = False) -> None:
        self.done += 1
        self.passed += record.passed
        self.resumed += resumed
        self.cached += record.cached and not resumed
        if resumed:
            return
        line = self.line()
        if self.live:
            self.stream.write("\r\033[K" + line)
            self.stream.flush()
            return
        mode = f" [{record.mode.value}]" if self.modes else ""
        cached = ", cached" if record.cached else ""
        log.info(
            "%s%s %s (%s, %d attempts%s) | %s",
            record.task_id,
            mode,
            "PASS" if record.passed else "FAIL",
            record.status.value,
            record.attempts,
            cached,
            line,
        )

    def line(self) -> str:
        elapsed = time.perf_counter() - self.started
        fresh = self.done - self.resumed
        remaining = self.total - self.done
        eta = elapsed / fresh * remaining if fresh else 0.0
        rate = 100.0 * self.passed / self.done if self.done else 0.0
        cached = f", {self.cached} cached" if self.cached else ""
        return f"[{self.done}/{self.total}] passed {self.passed} ({rate:.1f}%{cached}) ETA {eta:.0f}s"

    def close(self) -> None:
        if self.live and self.done:
            self.stream.write("\n")
            self.stream.flush()
