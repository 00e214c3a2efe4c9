"""Per-problem phase timing and the TIMING BREAKDOWN report, correct under concurrency.

Each problem owns a :class:`ProblemTimer`; nothing is shared between concurrent
problems. :func:`build_report` merges finished timers into one JSON-ready dict in which
busy time (summed phase durations) and wall time (length of the union of intervals)
are kept apart, so overlapping problems cannot inflate a category past the run's length
unnoticed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from koderz.errors import ConfigError

# Categories of the original report, matched by name prefix in this order.
CATEGORIES: tuple[str, ...] = ("cortex", "iteration", "spec", "checkpoint", "test")
OTHER = "other"
REPORT_WIDTH = 60


def category_of(phase_name: str) -> str:
    """Category of a phase: ``cortex_remember`` -> ``cortex``; unknown names -> ``other``."""
    for category in CATEGORIES:
        if phase_name.startswith(category):
            return category
    return OTHER


@dataclass(frozen=True)
class PhaseRecord:
    """One timed phase. ``start``/``end`` are ``perf_counter`` seconds, ``epoch_*`` Unix time."""

    name: str
    category: str
    task_id: str | None
    start: float
    end: float
    duration: float
    epoch_start: float
    epoch_end: float
    attrs: dict[str, Any] = field(default_factory=dict)


class ProblemTimer:
    """Phase records of one problem (or of the run itself, with ``task_id=None``)."""

    def __init__(self, task_id: str | None = None, start: float | None = None) -> None:
        now = time.perf_counter()
        self.task_id = task_id
        self.records: list[PhaseRecord] = []
        self.start = now if start is None else start
        self.end: float | None = None
        self._epoch_offset = time.time() - now

    @contextmanager
    def phase(self, name: str, **attrs: Any) -> Iterator[None]:
        """Time the enclosed block (also when it raises or is cancelled)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, start, time.perf_counter(), **attrs)

    def add(self, name: str, start: float, end: float, **attrs: Any) -> PhaseRecord:
        """Record a phase measured elsewhere (``perf_counter`` readings)."""
        if end < start:
            raise ValueError(f"phase {name!r}: end {end} is before start {start}")
        record = PhaseRecord(
            name=name,
            category=category_of(name),
            task_id=self.task_id,
            start=start,
            end=end,
            duration=end - start,
            epoch_start=start + self._epoch_offset,
            epoch_end=end + self._epoch_offset,
            attrs=attrs,
        )
        self.records.append(record)
        return record

    def finish(self, end: float | None = None) -> float:
        """Mark the problem done (first call wins) and return its duration."""
        if self.end is None:
            self.end = time.perf_counter() if end is None else end
        return self.end - self.start

    def duration(self, default_end: float) -> float:
        """Problem duration, using ``default_end`` if :meth:`finish` was never called."""
        return (self.end if self.end is not None else default_end) - self.start


class RunTiming:
    """Timing of one run: a run-level timer plus one :class:`ProblemTimer` per problem."""

    def __init__(self) -> None:
        self.run = ProblemTimer(task_id=None)
        self.problems: list[ProblemTimer] = []
        self.end: float | None = None

    def problem(self, task_id: str) -> ProblemTimer:
        """A fresh timer owned by one problem."""
        timer = ProblemTimer(task_id)
        self.problems.append(timer)
        return timer

    def finish(self) -> None:
        """Mark the end of the run (first call wins)."""
        if self.end is None:
            self.end = time.perf_counter()

    def report(self) -> dict[str, Any]:
        """The JSON report for everything recorded so far."""
        end = self.end if self.end is not None else time.perf_counter()
        return build_report(self.problems, self.run.start, end, startup_phases=self.run.records)


def union_length(intervals: Iterable[tuple[float, float]]) -> float:
    """Total length covered by the union of ``(start, end)`` intervals."""
    total = 0.0
    current_start = current_end = None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """Largest number of intervals open at one instant (touching ends do not overlap)."""
    spans = list(intervals)
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    peak = running = 0
    for _, step in events:  # at equal times -1 sorts before +1
        running += step
        peak = max(peak, running)
    return peak


def _category_busy(records: Iterable[PhaseRecord]) -> dict[str, float]:
    durations: dict[str, list[float]] = {c: [] for c in (*CATEGORIES, OTHER)}
    for record in records:
        durations[record.category].append(record.duration)
    return {c: math.fsum(d) for c, d in durations.items()}


def build_report(
    problem_timers: Iterable[ProblemTimer],
    run_start: float,
    run_end: float,
    startup_phases: Iterable[PhaseRecord] = (),
) -> dict[str, Any]:
    """Merge problem timers and run-level phases into the JSON report.

    ``run_start``/``run_end`` are ``perf_counter`` readings. A timer never finished
    (e.g. a cancelled problem) is taken to end at ``run_end``.
    """
    timers = list(problem_timers)
    records = sorted([*startup_phases, *(r for t in timers for r in t.records)], key=lambda r: r.start)
    total = run_end - run_start

    busy = _category_busy(records)
    # Summed in category order, so the categories add up to exactly this number.
    tracked = sum(busy.values())
    categories = {}
    for category, seconds in busy.items():
        members = [r for r in records if r.category == category]
        categories[category] = {
            "busy": seconds,
            "wall": union_length((r.start, r.end) for r in members),
            "count": len(members),
            "percent": 100.0 * seconds / tracked if tracked > 0 else 0.0,
        }

    by_name: dict[str, list[float]] = {}
    for record in records:
        by_name.setdefault(record.name, []).append(record.duration)
    phase_totals = {
        name: {
            "total": math.fsum(d),
            "count": len(d),
            "mean": math.fsum(d) / len(d),
            "min": min(d),
            "max": max(d),
        }
        for name, d in by_name.items()
    }

    spans = [(t.start, t.end if t.end is not None else run_end) for t in timers]
    problem_busy = math.fsum(end - start for start, end in spans)
    max_in_flight = max_overlap(spans)
    per_problem = {
        t.task_id: {
            "duration": end - start,
            "finished": t.end is not None,
            "phase_count": len(t.records),
            "categories": {c: s for c, s in _category_busy(t.records).items() if s > 0},
        }
        for t, (start, end) in zip(timers, spans, strict=True)
    }

    return {
        "total_duration": total,
        "tracked_duration": tracked,
        "overhead": total - tracked,
        "tracked_wall": union_length((r.start, r.end) for r in records),
        "phase_count": len(records),
        "categories": categories,
        "phase_totals": phase_totals,
        "problem_count": len(timers),
        "mean_in_flight": problem_busy / total if total > 0 else 0.0,
        "max_in_flight": max_in_flight,
        "concurrent": max_in_flight > 1,
        "per_problem": per_problem,
        "phases": [asdict(r) for r in records],
    }


def flat_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The report's headline numbers as flat ``timing_*`` metrics (for MLflow)."""
    metrics = {
        f"timing_{key}": float(report[key])
        for key in (
            "total_duration",
            "tracked_duration",
            "overhead",
            "tracked_wall",
            "mean_in_flight",
            "max_in_flight",
        )
    }
    for name, cat in report["categories"].items():
        if cat["count"]:
            metrics[f"timing_{name}_busy"] = cat["busy"]
            metrics[f"timing_{name}_wall"] = cat["wall"]
    return metrics


def format_report(report: dict[str, Any]) -> str:
    """The human-readable TIMING BREAKDOWN of a :func:`build_report` dict."""
    total = report["total_duration"]
    tracked = report["tracked_duration"]
    overhead = report["overhead"]
    concurrent = report["concurrent"]
    lines = [
        "",
        "=" * REPORT_WIDTH,
        "TIMING BREAKDOWN",
        "=" * REPORT_WIDTH,
        f"Total Duration: {total:.2f}s",
        f"Tracked Time:   {tracked:.2f}s",
        f"Overhead:       {overhead:.2f}s",
        f"Problems:       {report['problem_count']}  "
        f"(mean in flight {report['mean_in_flight']:.2f}, max {report['max_in_flight']})",
    ]
    if overhead < 0:
        lines.append("  Tracked time exceeds total duration because problems overlapped: tracked is")
        lines.append(f"  busy time summed over problems; phases covered {report['tracked_wall']:.2f}s of wall time.")
    lines += ["", "By Category:" + ("  (busy = summed, wall = union)" if concurrent else "")]
    lines.append("-" * REPORT_WIDTH)
    for name, cat in sorted(report["categories"].items(), key=lambda kv: -kv[1]["busy"]):
        if cat["count"] == 0:
            continue
        wall = f"  {cat['wall']:>8.2f}s wall" if concurrent else ""
        lines.append(
            f"  {name:<15} {cat['busy']:>8.2f}s{' busy' if concurrent else ''}{wall}  ({cat['percent']:>5.1f}%)"
        )

    top = sorted(report["phase_totals"].items(), key=lambda kv: -kv[1]["total"])[:5]
    if top:
        lines += ["", "Top 5 Phase Types:", "-" * REPORT_WIDTH]
        for name, stats in top:
            pct = 100.0 * stats["total"] / tracked if tracked > 0 else 0.0
            lines.append(
                f"  {name:<25} {stats['total']:>8.2f}s  ({pct:>5.1f}%)  n={stats['count']} mean={stats['mean']:.3f}s"
            )
    lines.append("=" * REPORT_WIDTH)
    return "\n".join(lines)


def export_report(report: dict[str, Any], path: str | Path) -> Path:
    """Write the report as JSON (``timing.export``); returns the path written."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"timing.export: cannot write {str(target)!r}: {exc}") from exc
    return target
