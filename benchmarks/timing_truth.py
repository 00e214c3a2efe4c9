"""Does the run's own timing tell the truth? Its total against the process wall time measured outside.

    python benchmarks/timing_truth.py [--end 40] [--repeats 2]

Runs ``python -m koderz`` (the README's main job on ``end`` HumanEval tasks) with the default
settings (tracking to a fresh MLflow store, the local memory store), with ``cortex=ephemeral``
(a memory server process per operation) and with ``tracking=off cortex=off``, and compares
``timing.json``'s ``total_duration`` with the wall time of the subprocess measured here. The total
starts at the process's start (from /proc) and ends at the last file the run writes (after the
final MLflow flush); what it cannot see is the interpreter's own exit. Also checked on each run:
no phase longer than the total, wall time of every category within the total, overhead >= 0,
model vs sandbox busy time reported. Prints a table and writes ``benchmarks/results/timing_truth.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, machine, product_state, run_koderz, write_json

RESULTS = ROOT / "benchmarks" / "results" / "timing_truth.json"
SETTINGS = {
    "default": [],
    "cortex=ephemeral": ["cortex=ephemeral"],
    "tracking=off cortex=off": ["tracking=off", "cortex=off"],
}


def measure(label: str, args: list[str]) -> dict[str, Any]:
    """One run: its outside wall time and what its timing.json says."""
    run = run_koderz([*args, "cache=false"])
    timing = run.timing
    total = timing["total_duration"]
    longest = max((p["end"] - p["start"] for p in timing["phases"]), default=0.0)
    categories = timing["categories"]
    return {
        "setting": label,
        "process_wall_s": run.wall,
        "timing_total_s": total,
        "total_over_wall": total / run.wall,
        "gap_s": run.wall - total,
        "longest_phase_s": longest,
        "consistent": longest <= total + 1e-6
        and timing["overhead"] >= 0
        and all(c["wall"] <= total + 1e-6 for c in categories.values()),
        "model_busy_s": timing["model_busy"],
        "sandbox_busy_s": timing["sandbox_busy"],
        "category_wall_s": {name: c["wall"] for name, c in categories.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--end", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    options = parser.parse_args()
    rows = []
    for _ in range(options.repeats):  # interleaved, so load drifts hit every setting alike
        for label, args in SETTINGS.items():
            rows.append(measure(label, [f"end={options.end}", *args]))
    print(
        f"{'setting':<26}{'wall s':>9}{'total s':>9}{'total/wall':>12}{'gap s':>8}{'model s':>9}{'sandbox s':>10}  ok"
    )
    for r in rows:
        print(
            f"{r['setting']:<26}{r['process_wall_s']:>9.2f}{r['timing_total_s']:>9.2f}{r['total_over_wall']:>12.3f}"
            f"{r['gap_s']:>8.2f}{r['model_busy_s']:>9.2f}{r['sandbox_busy_s']:>10.2f}  {r['consistent']}"
        )
    write_json(
        RESULTS,
        {"machine": machine(), "product": product_state(), "end": options.end, "runs": rows},
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
