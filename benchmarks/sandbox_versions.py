"""The sandbox of this checkout against earlier commits, interleaved, on every HumanEval+ input.

On a shared 2-CPU machine the same run varies by a quarter from one minute to the next, so a
figure measured weeks ago is no yardstick. This runs the canonical HumanEval+ solutions through
the sandbox of each commit given (checked out into temporary git worktrees) and of this
checkout, one after another in each round, and reports each commit's median wall and CPU time
as a ratio to this checkout's. Each run is a process of its own; the commit's code is imported
from its worktree (its judge server and fork server too), the ground truth from its own cache.

    python benchmarks/sandbox_versions.py [--rounds 4] [--rev 3df47ea --rev 4b626b0]

Prints a table and writes ``benchmarks/results/sandbox_versions.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, machine, product_state, write_json

RESULTS = ROOT / "benchmarks" / "results" / "sandbox_versions.json"
# one run of the code found first on sys.path: wall, CPU of this process and its children, passes
ONE_RUN = """
import asyncio, json, resource, time
from koderz.datasets.loaders import load_dataset
from koderz.sandbox.sandbox import Sandbox
problems = load_dataset("humaneval_plus")
sandbox = Sandbox()
async def go():
    return await asyncio.gather(*(sandbox.evaluate(p, p.reference_program) for p in problems))
def cpu():
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))
cpu0, wall0 = cpu(), time.perf_counter()
verdicts = asyncio.run(go())
wall = time.perf_counter() - wall0
sandbox.close()
print(json.dumps({"wall_s": wall, "cpu_s": cpu() - cpu0, "passed": sum(v.passed for v in verdicts)}))
"""


def run_once(tree: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run(
        [sys.executable, "-c", ONE_RUN], cwd=tree, env=env, capture_output=True, text=True, timeout=900, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rev", action="append", default=None, help="an earlier commit (repeatable)")
    args = parser.parse_args()
    revs = args.rev or ["3df47ea", "4b626b0"]
    with tempfile.TemporaryDirectory(prefix="koderz-versions-") as tmp:
        trees = {"this checkout": ROOT}
        for rev in revs:
            tree = Path(tmp) / rev
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True)
            trees[rev] = tree
        try:
            for tree in trees.values():  # untimed: each commit's ground truth computed and cached
                run_once(tree)
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
            for _ in range(args.rounds):
                for name, tree in trees.items():
                    runs[name].append(run_once(tree))
        finally:
            for rev in revs:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(Path(tmp) / rev)])
    medians = {
        name: {key: statistics.median(r[key] for r in rows) for key in ("wall_s", "cpu_s")}
        for name, rows in runs.items()
    }
    own = medians["this checkout"]
    report = {
        "machine": machine(),
        "product": product_state(),
        "rounds": args.rounds,
        "runs": runs,
        "medians": medians,
        "wall_ratio_to_this_checkout": {name: m["wall_s"] / own["wall_s"] for name, m in medians.items()},
        "cpu_ratio_to_this_checkout": {name: m["cpu_s"] / own["cpu_s"] for name, m in medians.items()},
    }
    print(f"{'code':16} {'median wall s':>14} {'median CPU s':>13} {'wall x':>7} {'passed':>7}")
    for name, m in medians.items():
        passed = {r["passed"] for r in runs[name]}
        ratio = report["wall_ratio_to_this_checkout"][name]
        print(f"{name:16} {m['wall_s']:14.2f} {m['cpu_s']:13.2f} {ratio:7.2f} {'/'.join(map(str, passed)):>7}")
    write_json(RESULTS, report)
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
