"""Runner overhead: ``python -m koderz`` on HumanEval with the reference model vs the sandbox alone.

    /work/venv/bin/python benchmarks/runner_overhead.py [--repeats 3]

In one run, on the same 164 programs (each task's canonical solution):
1. interpreter start-up: ``python -c "import koderz.__main__"``;
2. the sandbox alone: ``Sandbox().evaluate(problem, problem.reference_program)`` for all
   164 tasks at once (``asyncio.gather``; the sandbox bounds itself to one process per CPU);
3. end-to-end wall time of ``python -m koderz`` as a subprocess (``tracking=off cache=false``),
   with ``cortex=off`` and with the default ``cortex=persistent``, each at ``concurrency`` =
   number of CPUs and at the default 1.
Each figure is the median of ``--repeats`` runs. Goal: koderz <= 1.5 x the sandbox alone
plus interpreter start-up. Prints a table and writes ``benchmarks/results/runner_overhead.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, interpreter_startup, machine, product_state, run_koderz, write_json
from koderz.datasets.loaders import load_dataset
from koderz.sandbox.sandbox import Sandbox

RESULTS = ROOT / "benchmarks" / "results" / "runner_overhead.json"
GOAL = 1.5


async def sandbox_alone() -> dict[str, Any]:
    """All 164 reference programs through one Sandbox at once; seconds and pass count."""
    problems = load_dataset("humaneval")
    sandbox = Sandbox()
    start = time.perf_counter()
    verdicts = await asyncio.gather(*(sandbox.evaluate(p, p.reference_program) for p in problems))
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "programs": len(problems),
        "passed": sum(v.passed for v in verdicts),
        "slots": sandbox.max_processes,
    }


def koderz_config(cortex: str, concurrency: int, repeats: int) -> dict[str, Any]:
    args = ["tracking=off", "cache=false", f"cortex={cortex}", f"concurrency={concurrency}"]
    runs = [run_koderz(args) for _ in range(repeats)]
    walls = [r.wall for r in runs]
    passed = {r.summary["passed"] for r in runs}
    return {
        "args": args,
        "cortex": cortex,
        "concurrency": concurrency,
        "wall_s": statistics.median(walls),
        "walls": walls,
        "run_duration_s": statistics.median(r.summary["duration"] for r in runs),
        "problems_wall_s": statistics.median(r.problems_wall for r in runs),
        "passed": sorted(passed),
        "problems": runs[0].summary["problems"],
        "cortex_ops": runs[0].cortex()["ops"],
    }


def measure(repeats: int) -> dict[str, Any]:
    cpus = os.cpu_count() or 1
    load_dataset("humaneval")  # ground truth cached before anything is timed
    startup = interpreter_startup(max(5, repeats))
    asyncio.run(sandbox_alone())  # warm-up: page cache, first fork
    sandbox_runs = [asyncio.run(sandbox_alone()) for _ in range(repeats)]
    sandbox_s = statistics.median(r["seconds"] for r in sandbox_runs)
    budget = GOAL * sandbox_s + startup["median_s"]
    configs = []
    for cortex in ("off", "persistent"):
        for concurrency in dict.fromkeys((cpus, 1)):
            row = koderz_config(cortex, concurrency, repeats)
            row["over_sandbox"] = row["wall_s"] / sandbox_s
            row["over_sandbox_plus_startup"] = row["wall_s"] / (sandbox_s + startup["median_s"])
            row["within_goal"] = row["wall_s"] <= budget
            configs.append(row)
    headline = next(c for c in configs if c["cortex"] == "off" and c["concurrency"] == cpus)
    return {
        "machine": machine(),
        "product": product_state(),
        "repeats": repeats,
        "interpreter_startup": startup,
        "sandbox_alone": {"seconds": sandbox_s, "runs": sandbox_runs},
        "goal": {
            "rule": f"koderz wall <= {GOAL} x sandbox alone + interpreter start-up",
            "budget_s": budget,
            "met_headline": headline["within_goal"],
            "headline": "cortex=off concurrency=nproc",
            "met_all": all(c["within_goal"] for c in configs),
        },
        "koderz": configs,
    }


def render(result: dict[str, Any]) -> str:
    m, sb, st = result["machine"], result["sandbox_alone"], result["interpreter_startup"]
    lines = [
        f"machine: {m['nproc']} CPUs, {m['cpu_model']}, {m['memory_gb']} GB; load {m['load_average']}; {m['date']}",
        f"koderz: commit {result['product']['commit']}, source hash {result['product']['source_sha256']}, "
        f"uncommitted: {', '.join(result['product']['uncommitted']) or 'none'}",
        f"interpreter start-up (import koderz.__main__): {st['median_s']:.3f} s",
        f"sandbox alone, 164 reference programs at once ({sb['runs'][0]['slots']} slots): {sb['seconds']:.3f} s "
        f"({sb['runs'][0]['passed']}/164 passed)",
        f"budget = {GOAL} x sandbox + start-up = {result['goal']['budget_s']:.3f} s",
        "",
        f"{'python -m koderz (reference, humaneval)':<44}{'wall s':>8}{'run s':>8}{'probs s':>8}"
        f"{'x sbox':>8}{'x(sb+st)':>9}{'passed':>8}  goal",
    ]
    for c in result["koderz"]:
        label = f"cortex={c['cortex']} concurrency={c['concurrency']}"
        lines.append(
            f"{label:<44}{c['wall_s']:>8.2f}{c['run_duration_s']:>8.2f}{c['problems_wall_s']:>8.2f}"
            f"{c['over_sandbox']:>8.2f}{c['over_sandbox_plus_startup']:>9.2f}"
            f"{'/'.join(map(str, c['passed'])) + '/' + str(c['problems']):>8}  {'met' if c['within_goal'] else 'MISSED'}"
        )
    lines += ["", "wall = whole subprocess; run = Runner.run (summary.duration); probs = first to last problem phase"]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    options = parser.parse_args()
    outcome = measure(options.repeats)
    write_json(options.out, outcome)
    print(render(outcome))
    print(f"\nwrote {options.out}")
