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
        self.done = self.verdicts = self.passed = self.resumed = self.cached = 0
        self.fresh_verdicts = 0
        self.started = time.perf_counter()
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()

    def begin(self) -> None:
        """Say at once what runs (the first problem may take a while to finish)."""
        line = self.line()
        if self.live:
            self.stream.write(line)
            self.stream.flush()
        else:
            log.info("%s", line)

    def update(self, record: ProblemRecord, resumed: bool = False) -> None:
        self.done += 1
        self.verdicts += record.has_verdict
        self.passed += record.passed
        self.resumed += resumed
        self.cached += record.cached and not resumed
        self.fresh_verdicts += record.has_verdict and not resumed
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
        """``[done/total] passed P of V verdicts (rate)``, the unanswered and cached, and an ETA.

        The rate is over verdicts only (an unanswered problem is not a failure); the ETA extrapolates
        from fresh verdicts and is left out once problems come back unanswered (a dead endpoint
        finishes them at once, so the past rate says nothing about the rest).
        """
        elapsed = time.perf_counter() - self.started
        remaining = self.total - self.done
        unanswered = self.done - self.verdicts
        rate = 100.0 * self.passed / self.verdicts if self.verdicts else 0.0
        parts = [f"[{self.done}/{self.total}] passed {self.passed} of {self.verdicts} verdicts ({rate:.1f}%)"]
        if unanswered:
            parts.append(f"{unanswered} unanswered")
        if self.cached:
            parts.append(f"{self.cached} cached")
        line = ", ".join(parts)
        if remaining and self.fresh_verdicts and not unanswered:
            line += f" ETA {elapsed / self.fresh_verdicts * remaining:.0f}s"
        return line

    def close(self) -> None:
        if self.live and self.done:
            self.stream.write("\n")
            self.stream.flush()
