"""Two runs on the same tasks, paired task by task: the difference of their pass rates with a
95% interval, McNemar's exact test, a paired bootstrap for pass@k, and the tasks that flipped.

A run is read through ``RunFolder`` only: its config names the dataset and the prompt protocol,
results.jsonl holds each task's verdicts. Runs on different datasets, task sets or protocols
are refused (``ConfigError``): their pass rates do not measure the same thing. Tasks without a
verdict in either run are left out of the pairing and listed (``excluded``); an error is never
counted as a pass or a fail.

With one sample per task a task's outcome is its verdict; with several its pass@1 is the share
of passing samples, and McNemar's test and the flipped tasks use "some sample passed".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import Field

from koderz import stats
from koderz.errors import ConfigError
from koderz.records import Interval, ProblemRecord, RunFolder
from koderz.records.models import Record
from koderz.report import KS, per_task_pass_at_k, verdicts_of
from koderz.vocab import Mode, Protocol

CI_METHOD = f"paired bootstrap over tasks ({stats.RESAMPLES} resamples, seed {stats.SEED})"


@dataclass(frozen=True)
class Run:
    """One run's part (``mode``) as the pairing needs it."""

    folder: Path
    run_id: str
    model: str
    dataset: str
    protocol: str
    mode: Mode
    records: dict[str, ProblemRecord]  # by task id

    @classmethod
    def read(cls, path: Path, mode: Mode | None = None) -> Run:
        """The run in ``path``; ``mode`` picks a comparative run's part (default: its headline)."""
        folder = RunFolder.existing(path)
        config = folder.read_config()
        chosen = mode or folder.read_mode().spec.headline or folder.parts[0]
        if chosen not in folder.parts:
            parts = ", ".join(m.value for m in folder.parts)
            raise ConfigError(f"{path}: has no {chosen.value} part (it ran {parts})")
        state = folder.read_state()
        return cls(
            folder=path,
            run_id=state.run_id if state else path.name,
            model=str((config.get("model") or {}).get("name", "?")),
            dataset=str((config.get("dataset") or {}).get("name", "?")),
            protocol=str((config.get("prompt") or {}).get("protocol", Protocol.KODERZ.value)),
            mode=chosen,
            records={r.task_id: r for r in folder.records() if r.mode == chosen},
        )

    def verdicts(self, task: str) -> list[bool]:
        return verdicts_of(self.records[task], sampled=not self.mode.spec.feedback)


class Side(Record):
    """One run's figures over the paired tasks."""

    folder: str
    run_id: str
    model: str
    mode: Mode
    pass_rate: float
    ci: Interval
    samples_per_task: int


class PassAtKDifference(Record):
    k: str
    a: float
    b: float
    difference: float
    ci_low: float
    ci_high: float


class PairedComparison(Record):
    """B against A over the tasks both answered (``difference`` = B - A, pass@1)."""

    a: Side
    b: Side
    dataset: str
    protocol: str
    tasks: int
    difference: float
    ci_low: float
    ci_high: float
    ci_method: str = CI_METHOD
    mcnemar_p: float
    a_only: int  # tasks only A solved (flipped to fail in B)
    b_only: int  # tasks only B solved (flipped to pass in B)
    both: int
    neither: int
    a_only_tasks: list[str] = Field(default_factory=list)
    b_only_tasks: list[str] = Field(default_factory=list)
    excluded: list[str] = Field(default_factory=list)  # tasks without a verdict in A or B
    pass_at_k: list[PassAtKDifference] = Field(default_factory=list)


def compare(a: Run, b: Run) -> PairedComparison:
    """The paired comparison of ``b`` against ``a``; ConfigError when they cannot be paired."""
    _check_pairable(a, b)
    tasks = sorted(a.records)
    paired = [t for t in tasks if a.records[t].has_verdict and b.records[t].has_verdict]
    if not paired:
        raise ConfigError(f"{a.folder} and {b.folder}: no task has a verdict in both runs")
    a_verdicts = [a.verdicts(t) for t in paired]
    b_verdicts = [b.verdicts(t) for t in paired]
    a_share = [sum(v) / len(v) for v in a_verdicts]
    b_share = [sum(v) / len(v) for v in b_verdicts]
    a_solved = [any(v) for v in a_verdicts]
    b_solved = [any(v) for v in b_verdicts]
    a_only = [t for t, x, y in zip(paired, a_solved, b_solved, strict=True) if x and not y]
    b_only = [t for t, x, y in zip(paired, a_solved, b_solved, strict=True) if y and not x]
    both = sum(1 for x, y in zip(a_solved, b_solved, strict=True) if x and y)
    interval = stats.paired_bootstrap(a_share, b_share)
    return PairedComparison(
        a=_side(a, a_verdicts, a_share),
        b=_side(b, b_verdicts, b_share),
        dataset=a.dataset,
        protocol=a.protocol,
        tasks=len(paired),
        difference=float(np.mean(b_share) - np.mean(a_share)),
        ci_low=interval.low,
        ci_high=interval.high,
        mcnemar_p=stats.mcnemar_exact(len(a_only), len(b_only)),
        a_only=len(a_only),
        b_only=len(b_only),
        both=both,
        neither=len(paired) - both - len(a_only) - len(b_only),
        a_only_tasks=a_only,
        b_only_tasks=b_only,
        excluded=[t for t in tasks if t not in set(paired)],
        pass_at_k=_pass_at_k(a_verdicts, b_verdicts),
    )


def _check_pairable(a: Run, b: Run) -> None:
    if a.dataset != b.dataset:
        raise ConfigError(f"{a.folder} ran {a.dataset}, {b.folder} ran {b.dataset}: different task sets")
    if a.protocol != b.protocol:
        raise ConfigError(
            f"{a.folder} used prompt.protocol={a.protocol}, {b.folder} prompt.protocol={b.protocol}: "
            "different protocols are not compared"
        )
    if set(a.records) != set(b.records):
        only_a, only_b = sorted(set(a.records) - set(b.records)), sorted(set(b.records) - set(a.records))
        example = (only_a or only_b)[0]
        raise ConfigError(
            f"{a.folder} ({len(a.records)} tasks) and {b.folder} ({len(b.records)} tasks) ran different task sets "
            f"({len(only_a)} only in the first, {len(only_b)} only in the second, e.g. {example})"
        )


def _side(run: Run, verdicts: list[list[bool]], shares: list[float]) -> Side:
    several = any(len(v) > 1 for v in verdicts)
    solved = sum(1 for v in verdicts if any(v))
    return Side(
        folder=str(run.folder),
        run_id=run.run_id,
        model=run.model,
        mode=run.mode,
        pass_rate=float(np.mean(shares)),
        ci=stats.bootstrap_mean(shares) if several else stats.wilson(solved, len(verdicts)),
        samples_per_task=max(len(v) for v in verdicts),
    )


def _pass_at_k(a: list[list[bool]], b: list[list[bool]]) -> list[PassAtKDifference]:
    """pass@k of both runs and a paired bootstrap of its difference, for every k > 1 that both
    runs' fewest samples per task allow (pass@1 is the difference itself)."""
    fewest = min(len(v) for v in a + b)
    out = []
    for k in (k for k in KS if 1 < k <= fewest):
        a_k, b_k = per_task_pass_at_k(a, k), per_task_pass_at_k(b, k)
        interval = stats.paired_bootstrap(a_k, b_k)
        out.append(
            PassAtKDifference(
                k=f"pass@{k}",
                a=float(np.mean(a_k)),
                b=float(np.mean(b_k)),
                difference=float(np.mean(b_k) - np.mean(a_k)),
                ci_low=interval.low,
                ci_high=interval.high,
            )
        )
    return out
