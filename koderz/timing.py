"""Where the time went: the run's own phases, the problems' spans, and the report built from both.

The experiment returns each problem's spans; the runner times its own phases (start-up, memory,
tracking, shutdown) with a :class:`RunClock` and builds the :class:`RunTiming` record from all
of them with :func:`build_timing`. Busy time (summed durations: overlapping problems add up)
and wall time (the union of intervals) are kept apart for every category, so neither can pass
for the other; the total covers the whole job, from the interpreter's start (a sweep's job: from
when Hydra starts it) to the last file written, and, for a resumed run, every part.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import koderz
from koderz.errors import ConfigError
from koderz.records import (
    CategoryTiming,
    PhaseRecord,
    PhaseTotal,
    ProblemTiming,
    RunFolder,
    RunPart,
    RunTiming,
    Span,
    TraceRecord,
)
from koderz.vocab import MODEL_CATEGORIES, Category, Phase

REPORT_WIDTH = 72


def process_start() -> float:
    """Unix time this process started (Linux ``/proc``); now when it cannot be read. A process that
    exec'd keeps its start: ``bash -c "sleep 20 && exec python ..."`` started with bash."""
    try:
        stat = Path("/proc/self/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return time.time()
    return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")


def interpreter_start() -> float:
    """Unix time this program's interpreter started: the process's start, or, when the process
    began as something else and exec'd into Python later (a shell's ``exec``, which keeps the
    pid), the moment koderz was first imported less the time the process had spent running or
    waiting for a CPU by then (the interpreter's start-up, also on a loaded machine; a shell's
    few milliseconds are counted too, its sleeping is not)."""
    imported, busy = koderz.IMPORTED
    return max(process_start(), imported - busy)


class RunClock:
    """Times the run's own phases as spans (Unix seconds, durations from ``perf_counter``)."""

    def __init__(self) -> None:
        self.spans: list[Span] = []

    @contextmanager
    def phase(self, phase: Phase) -> Iterator[None]:
        wall, start = time.time(), time.perf_counter()
        try:
            yield
        finally:
            self.spans.append(Span(name=phase, start=wall, end=wall + time.perf_counter() - start))


@dataclass(frozen=True)
class _Timeline:
    """Maps Unix times of each part onto one timeline of the parts laid end to end."""

    parts: tuple[RunPart, ...]

    def offset(self, t: float) -> float:
        before = 0.0
        for i, part in enumerate(self.parts):
            nxt = self.parts[i + 1].started if i + 1 < len(self.parts) else math.inf
            if t < nxt:
                return before + max(0.0, min(t - part.started, part.duration))
            before += part.duration
        return before

    @property
    def total(self) -> float:
        return math.fsum(p.duration for p in self.parts)


def add_closing_phase(folder: RunFolder, phase: Phase, start: float, end: float) -> RunTiming | None:
    """Extend a finished run's last part by a phase that ran after its records were written (the
    final MLflow flush), so the timing's total reaches the process's last act; rewrites the
    timing, the results' summary and run.json. None when the run left no results."""
    state = folder.read_state()
    if state is None or not state.parts or not folder.has_results():
        return None
    part = state.parts[-1]
    part.spans.append(Span(name=phase, start=start, end=end))
    part.ended = max(part.ended or end, end)
    part.duration = part.ended - part.started
    results = folder.read_results()
    timing = build_timing(state.parts, [s for p in state.parts for s in p.spans], folder.traces())
    results.timing = timing
    results.summary.duration = timing.total_duration
    answered = len(results.problems)
    results.summary.throughput = answered / timing.total_duration if timing.total_duration > 0 else 0.0
    folder.write_results(results)
    folder.write_timing(timing)
    folder.write_state(state)
    return timing


def build_timing(parts: list[RunPart], run_spans: Iterable[Span], traces: Iterable[TraceRecord]) -> RunTiming:
    """The timing record of a run made of ``parts`` (each with its ``duration`` set)."""
    timeline = _Timeline(tuple(parts))
    total = timeline.total
    phases = [_phase(s, None, timeline) for s in run_spans]
    problems: dict[str, ProblemTiming] = {}
    intervals = []
    traces_seen = list(traces)
    for trace in traces_seen:
        own = [_phase(s, trace.task_id, timeline) for s in trace.spans]
        phases += own
        start, end = timeline.offset(trace.start), timeline.offset(trace.end)
        intervals.append((start, end))
        key = trace.task_id if trace.task_id not in problems else f"{trace.task_id} ({trace.mode})"
        problems[key] = ProblemTiming(
            duration=end - start, finished=True, phase_count=len(own), categories=_busy_by_category(own)
        )
    phases.sort(key=lambda p: p.start)
    categories: dict[Category, CategoryTiming] = {}
    for category in Category:
        members = [p for p in phases if p.category is category]
        if not members:
            continue
        busy = math.fsum(p.end - p.start for p in members)
        wall = union_length((p.start, p.end) for p in members)
        categories[category] = CategoryTiming(
            busy=busy,
            wall=wall,
            count=len(members),
            percent=100.0 * wall / total if total > 0 else 0.0,
            mean_in_flight=busy / wall if wall > 0 else 0.0,
        )
    reported = [
        s.call.server_seconds
        for trace in traces_seen
        for s in trace.spans
        if s.call is not None and s.call.server_seconds is not None
    ]
    tracked = union_length((p.start, p.end) for p in phases)
    busy_of = {name: c.busy for name, c in categories.items()}
    return RunTiming(
        total_duration=total,
        tracked_wall=tracked,
        overhead=max(0.0, total - tracked),
        model_busy=math.fsum(busy_of.get(c, 0.0) for c in MODEL_CATEGORIES),
        model_server=math.fsum(reported) if reported else None,
        model_server_calls=len(reported),
        sandbox_busy=busy_of.get(Category.TEST, 0.0),
        categories=categories,
        phase_totals=_phase_totals(phases),
        problem_count=len(intervals),
        mean_in_flight=math.fsum(e - s for s, e in intervals) / total if total > 0 else 0.0,
        max_in_flight=max_overlap(intervals),
        parts=[p.duration for p in parts],
        per_problem=problems,
        phases=phases,
    )


def _phase(span: Span, task_id: str | None, timeline: _Timeline) -> PhaseRecord:
    start = timeline.offset(span.start)
    return PhaseRecord(
        name=span.name,
        category=span.name.category,
        task_id=task_id,
        start=start,
        end=max(start, timeline.offset(span.end)),
    )


def _busy_by_category(phases: list[PhaseRecord]) -> dict[Category, float]:
    out: dict[Category, float] = {}
    for p in phases:
        out[p.category] = out.get(p.category, 0.0) + (p.end - p.start)
    return out


def _phase_totals(phases: list[PhaseRecord]) -> dict[str, PhaseTotal]:
    by_name: dict[str, list[float]] = {}
    for p in phases:
        by_name.setdefault(p.name, []).append(p.end - p.start)
    return {
        name: PhaseTotal(total=math.fsum(d), count=len(d), mean=math.fsum(d) / len(d), min=min(d), max=max(d))
        for name, d in by_name.items()
    }


def union_length(intervals: Iterable[tuple[float, float]]) -> float:
    """Total length covered by the union of ``(start, end)`` intervals."""
    total, covered = 0.0, -math.inf  # covered: the end of the union so far
    for start, end in sorted(intervals):
        if end > covered:
            total += end - max(start, covered)
            covered = end
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


def format_report(timing: RunTiming) -> str:
    """The human-readable TIMING BREAKDOWN."""
    total = timing.total_duration
    lines = [
        "",
        "=" * REPORT_WIDTH,
        "TIMING BREAKDOWN",
        "=" * REPORT_WIDTH,
        f"Total Duration: {total:.2f}s" + (f"  ({len(timing.parts)} parts: resumed)" if len(timing.parts) > 1 else ""),
        f"Tracked (wall): {timing.tracked_wall:.2f}s",
        f"Overhead:       {timing.overhead:.2f}s  (no phase running)",
        f"Problems:       {timing.problem_count}  "
        f"(mean in flight {timing.mean_in_flight:.2f}, max {timing.max_in_flight})",
        f"Model calls:    {timing.model_busy:.2f}s busy   Sandbox: {timing.sandbox_busy:.2f}s busy",
        *(
            [f"Model server:   {timing.model_server:.2f}s  (its own time, on {timing.model_server_calls} calls)"]
            if timing.model_server is not None
            else []
        ),
        "",
        f"{'By Category:':<17}{'busy':>9}  {'wall':>9}  {'in flight':>9}  {'% of total':>10}",
        "-" * REPORT_WIDTH,
    ]
    for category, cat in sorted(timing.categories.items(), key=lambda kv: -kv[1].busy):
        lines.append(
            f"  {category:<15}{cat.busy:>8.2f}s  {cat.wall:>8.2f}s  {cat.mean_in_flight:>9.2f}  {cat.percent:>9.1f}%"
        )
    top = sorted(timing.phase_totals.items(), key=lambda kv: -kv[1].total)[:5]
    if top:
        lines += ["", "Top 5 Phase Types (busy):", "-" * REPORT_WIDTH]
        for name, stats in top:
            lines.append(f"  {name:<25} {stats.total:>8.2f}s  n={stats.count} mean={stats.mean:.3f}s")
    lines.append("=" * REPORT_WIDTH)
    return "\n".join(lines)


def export_report(timing: RunTiming, path: str | Path) -> Path:
    """Write the timing JSON to ``path`` (``timing.export``); returns the path written."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(timing.model_dump_json(indent=2), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"timing.export: cannot write {str(target)!r}: {exc}") from exc
    return target
