"""Figures for a run and a sweep, drawn with matplotlib's object API (no pyplot state).

Each function returns a ``matplotlib.figure.Figure`` rendered by the Agg canvas, so it
works headless and from worker threads; the caller saves or logs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _figure(width: float = 6.4, height: float = 4.0) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def pass_rate_by_iteration(curve: Sequence[float]) -> Figure:
    """Share of problems solved within i iterations, i = 1..len(curve)."""
    fig, ax = _figure()
    iterations = list(range(1, len(curve) + 1))
    ax.plot(iterations, curve, marker="o")
    ax.set(xlabel="iterations", ylabel="solved within i iterations", ylim=(0, 1.02), title="Pass rate by iteration")
    ax.set_xticks(iterations)
    ax.grid(alpha=0.3)
    return fig


def time_by_category(categories: Mapping[str, Mapping[str, float]]) -> Figure:
    """Busy (summed over problems) and wall time per timing category."""
    names = sorted(categories, key=lambda n: categories[n].get("busy") or 0)
    fig, ax = _figure(height=max(2.5, 0.5 * len(names) + 1.5))
    rows = range(len(names))
    ax.barh(
        [r + 0.2 for r in rows],
        [categories[n].get("busy") or 0 for n in names],
        height=0.4,
        label="busy (sum over problems)",
    )
    ax.barh([r - 0.2 for r in rows], [categories[n].get("wall") or 0 for n in names], height=0.4, label="wall")
    ax.set_yticks(list(rows), names)
    ax.set(xlabel="seconds", title="Time by category")
    ax.legend(loc="lower right")
    return fig


def cost_vs_pass_rate(points: Sequence[tuple[str, float, float]]) -> Figure:
    """Labelled scatter of (label, cost in USD, pass rate)."""
    fig, ax = _figure()
    for label, cost, rate in points:
        ax.scatter([cost], [rate])
        ax.annotate(label, (cost, rate), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set(xlabel="cost (USD)", ylabel="pass rate", ylim=(0, 1.05), title="Cost vs pass rate")
    ax.grid(alpha=0.3)
    return fig
