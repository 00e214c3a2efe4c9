"""A correct program beside an attack on the judge finishes within 1.5x of its solo time (slow:
a ratio of wall times measured in one run, so it belongs in the slow suite, not the default one).
Other jobs share the machine: an attack over the bound is measured once more before it fails,
and the lower of its two medians counts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "judge_isolation.py"
STALLS = ["colliding_set", "colliding_list_judged_as_set", "endless_line", "huge_answer_humaneval"]


def _benchmark():
    spec = importlib.util.spec_from_file_location("judge_isolation", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
async def test_attacks_on_the_judge_do_not_slow_a_neighbour() -> None:
    benchmark = _benchmark()
    rows = await benchmark.measure(rounds=5, task="HumanEval/36", only=STALLS)  # medians of 5: less noise
    assert sorted(rows) == sorted(STALLS)
    over = [name for name, row in rows.items() if row["ratio"] > 1.5]
    if over:
        again = await benchmark.measure(rounds=5, task="HumanEval/36", only=over)
        rows |= {name: min(rows[name], again[name], key=lambda row: row["ratio"]) for name in over}
    for name, row in rows.items():
        assert row["ratio"] <= 1.5, (name, row)
        assert row["koderz_peak_rss_mb"] < 500, (name, row)
