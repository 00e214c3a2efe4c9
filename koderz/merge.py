"""``python -m koderz.merge SWEEP_DIR``: the shards of one run (``shard=K/N`` jobs) merged into one run.

Shards are found under ``SWEEP_DIR`` (any depth); they must share one config except ``shard``,
and every shard ``0/N`` .. ``N-1/N`` must be there exactly once. Each shard's files are checked
(``validate``) before anything is written: a bad one is one line naming the shard and the record,
exit 2, and no merged folder. The merged folder (``SWEEP_DIR/merged`` unless ``--out``) holds every
problem's records in selection order, a summary computed afresh over all of them (the figures an
unsharded run gives; the weakest containment of any shard), and the timing of the whole beside each
shard's own. With tracking on, the merged run is logged to MLflow as one run.
"""

from __future__ import annotations

import logging
import sys
import uuid
from pathlib import Path
from typing import Any

from koderz import report
from koderz.arguments import OneLineParser
from koderz.config import RunConfig, shard_of, typed
from koderz.errors import ConfigError, KoderzError
from koderz.plan import Plan
from koderz.problems import load_problems
from koderz.records import (
    AttemptRecord,
    ProblemRecord,
    RunFolder,
    RunPart,
    RunResults,
    RunState,
    SampleRecord,
    TraceRecord,
)
from koderz.runner import select_problems
from koderz.sandbox.mechanism import STRENGTH, Mechanism
from koderz.timing import build_timing
from koderz.vocab import Mode, PartStatus, Status

log = logging.getLogger("koderz.merge")
IGNORED_KEYS = ("shard", "resume")


def find_shards(root: Path) -> list[RunFolder]:
    """Run folders under ``root`` made with ``shard=K/N`` (not a merged folder)."""
    shards = []
    for state_file in sorted(root.rglob("run.json")):
        folder = RunFolder(state_file.parent)
        if folder.is_run_folder() and folder.read_config().get("shard"):
            shards.append(RunFolder.existing(folder.path))
    return shards


def _common_config(shards: list[RunFolder]) -> dict[str, Any]:
    """The config every shard shares (``shard`` and ``resume`` set to null); ConfigError if they differ."""
    configs = [s.read_config() for s in shards]
    common = {k: v for k, v in configs[0].items() if k not in IGNORED_KEYS}
    for shard, config in zip(shards[1:], configs[1:], strict=True):
        for key in sorted(set(common) | {k for k in config if k not in IGNORED_KEYS}):
            if config.get(key) != common.get(key):
                raise ConfigError(f"{shard.path}: its {key} differs from {shards[0].path}'s; not shards of one run")
    return common | dict.fromkeys(IGNORED_KEYS)


def _check_complete(shards: list[RunFolder]) -> int:
    """Every shard 0..N-1 exactly once; returns N."""
    seen: dict[int, Path] = {}
    counts = set()
    for shard in shards:
        index, count = shard_of(str(shard.read_config()["shard"]))
        counts.add(count)
        if index in seen:
            raise ConfigError(f"shard={index}/{count} appears twice: {seen[index]} and {shard.path}")
        seen[index] = shard.path
        if not shard.has_results():
            raise ConfigError(f"{shard.path}: shard {index}/{count} has not finished (no results.json)")
    if len(counts) != 1:
        raise ConfigError(f"shards of different counts: {sorted(counts)}")
    (count,) = counts
    missing = sorted(set(range(count)) - set(seen))
    if missing:
        raise ConfigError(f"shard={missing[0]}/{count} is missing (found {len(seen)} of {count} shards)")
    return count


Report = tuple[Mechanism, dict[str, str]]


def _report(mechanism: Mechanism | None, isolation: dict[str, str], verdict: bool, where: str) -> list[Report]:
    """The containment an item was judged under, with its isolation line; a verdict must name one."""
    if mechanism is None:
        if verdict:
            raise ConfigError(f"{where}: a verdict that names no containment")
        return []
    return [(mechanism, isolation)]


def _agrees(passed: bool, status: Status, where: str) -> None:
    if passed != (status is Status.PASSED):
        raise ConfigError(f"{where}: passed={str(passed).lower()} but status {status.value}")


def validate(shard: RunFolder, tasks: frozenset[str], parts: tuple[Mode, ...]) -> list[Report]:
    """ConfigError naming the shard and the record unless every item of ``shard`` is one of its own
    ``tasks`` in one of the run's ``parts``, once, with ``passed`` as its ``status`` says, every verdict
    names its containment, and its summary counts between its records and its slice of problems;
    returns the isolation reports it holds (its summary's and its records')."""
    name = str(shard.path)
    config_shard = str(shard.read_config()["shard"])
    summary = shard.read_results().summary
    if summary.shard != config_shard:
        raise ConfigError(f"{name}: results.json is of shard {summary.shard}, its config of {config_shard}")
    reports = _report(summary.mechanism, summary.isolation, bool(summary.answered), f"{name}: results.json's summary")

    def owned(task_id: str, mode: Mode, what: str) -> str:
        where = f"{name}: {what} {mode.value} {task_id}"
        if task_id not in tasks:
            raise ConfigError(f"{where}: its task is not in shard {config_shard}'s slice")
        if mode not in parts:
            raise ConfigError(f"{where}: this run has no {mode.value} part")
        return where

    seen: set[tuple[object, ...]] = set()

    def once(key: tuple[object, ...], where: str) -> None:
        if key in seen:
            raise ConfigError(f"{where}: appears twice")
        seen.add(key)

    for record in shard.every_record():
        where = owned(record.task_id, record.mode, "record")
        once(("record", record.mode, record.task_id), where)
        _agrees(record.passed, record.status, where)
        for outcome in record.outcomes:
            _agrees(outcome.passed, outcome.status, f"{where} attempt {outcome.index}")
        if record.passed and not any(o.passed for o in record.outcomes):
            raise ConfigError(f"{where}: passed=true but none of its attempts passed")
        reports += _report(record.mechanism, record.isolation, record.has_verdict, where)
    recorded = set(seen)
    problems = {(key[1], key[2]) for key in recorded}
    answered = len({task_id for _, task_id in problems})
    if not answered <= summary.problems <= len(tasks):
        raise ConfigError(
            f"{name}: results.json counts {summary.problems} problems; its slice has {len(tasks)},"
            f" its records {answered}"
        )
    for attempt in shard.attempts():
        where = owned(attempt.task_id, attempt.mode, f"attempt {attempt.index} of")
        once(("attempt", attempt.mode, attempt.task_id, attempt.index), where)
        _agrees(attempt.passed, attempt.status, where)
    for mode in parts:
        for sample in shard.samples(mode):
            where = owned(sample.task_id, mode, f"sample {sample.sample_index} of")
            once(("sample", mode, sample.task_id, sample.sample_index), where)
            _agrees(sample.passed, sample.status, where)
    for trace in shard.traces():
        where = owned(trace.task_id, trace.mode, "trace of")
        once(("trace", trace.mode, trace.task_id), where)
        _agrees(trace.passed, trace.status, where)
    for key in seen - recorded:
        if (key[1], key[2]) not in problems:
            raise ConfigError(f"{name}: {key[0]} {key[1]} {key[2]}: the shard has no record of its problem")
    return reports


def weakest(reports: list[Report]) -> Report | None:
    """The weakest containment among ``reports`` (all already validated), with its isolation line."""
    return min(reports, key=lambda report: STRENGTH[report[0]], default=None)


def merge(shards: list[RunFolder], out: Path) -> RunResults:
    """Write the merged run to ``out`` and return its results (nothing is written when a check fails)."""
    if not shards:
        raise ConfigError("no shard run folders found (runs made with shard=K/N)")
    count = _check_complete(shards)
    config = _common_config(shards)
    plan = Plan.build(typed(RunConfig, config))
    chosen = [p.task_id for p in select_problems(load_problems(plan.config.dataset), plan)]
    order = {task_id: i for i, task_id in enumerate(chosen)}
    parts = plan.mode.spec.parts
    reports = []
    for shard in shards:
        index, _ = shard_of(str(shard.read_config()["shard"]))
        reports += validate(shard, frozenset(chosen[index::count]), parts)

    def key(item: ProblemRecord | SampleRecord | AttemptRecord | TraceRecord) -> tuple[int, str]:
        return order.get(item.task_id, len(order)), item.task_id

    records = sorted((r for s in shards for r in s.records()), key=lambda r: (key(r), parts.index(r.mode)))
    attempts = sorted((a for s in shards for a in s.attempts()), key=lambda a: (key(a), parts.index(a.mode), a.index))
    samples = {
        m: sorted((x for s in shards for x in s.samples(m)), key=lambda x: (key(x), x.sample_index)) for m in parts
    }
    traces = sorted((t for s in shards for t in s.traces()), key=lambda t: (key(t), parts.index(t.mode)))
    shard_states = [s.read_state() for s in shards]
    shard_parts = [p for state in shard_states if state is not None for p in state.parts]
    whole = RunPart(
        started=min(p.started for p in shard_parts),
        ended=max(p.ended or p.started for p in shard_parts),
        status=PartStatus.FINISHED,
    )
    whole.duration = (whole.ended or whole.started) - whole.started
    timing = build_timing([whole], [span for p in shard_parts for span in p.spans], traces)
    shard_results = [s.read_results() for s in shards]
    state = RunState(run_id=f"{out.name}-{uuid.uuid4().hex[:6]}", parts=[whole])
    summary = report.summarize_plan(
        plan,
        records,
        run_id=state.run_id,
        selected=sum(r.summary.problems for r in shard_results),
    )
    summary.duration = timing.total_duration
    summary.throughput = len(records) / timing.total_duration if timing.total_duration > 0 else 0.0
    summary.interrupted = any(r.summary.interrupted for r in shard_results)
    summary.memory_lost_writes = sum(r.summary.memory_lost_writes for r in shard_results)
    summary.merged_from = [str(s.path) for s in shards]
    weakest_report = weakest(reports)
    summary.mechanism, summary.isolation = weakest_report if weakest_report is not None else (None, {})
    results = RunResults(
        summary=summary,
        problems=records,
        timing=timing,
        shard_timing={str(r.summary.shard): r.timing for r in shard_results},
    )
    merged = RunFolder(out, parts=parts)
    merged.write_config(config)
    merged.write_all(records, attempts, samples, traces)
    merged.write_results(results)
    merged.write_timing(timing)
    merged.write_state(state)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m koderz.merge", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="the folder holding the shard runs (a sweep folder)")
    parser.add_argument("--out", type=Path, help="where the merged run goes (default: SWEEP_DIR/merged)")
    parser.add_argument("--no-track", action="store_true", help="do not log the merged run to MLflow")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = args.out or args.sweep_dir / "merged"
    try:
        results = merge([s for s in find_shards(args.sweep_dir) if s.path != out], out)
    except KoderzError as exc:
        sys.stderr.write(f"koderz.merge: error: {exc}\n")
        return 2
    log.info("%s", report.format_summary(results.summary, str(out)))
    config = RunFolder(out, parts=results.summary.mode.spec.parts).read_config()
    if not args.no_track and (config.get("tracking") or {}).get("enabled"):
        from koderz.tracking.logger import log_run_folder
        from koderz.tracking.names import Tag

        tracking = typed(RunConfig, config).tracking
        log_run_folder(out, tracking, tags={Tag.MERGED_FROM.value: " ".join(results.summary.merged_from)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
