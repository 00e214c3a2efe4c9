"""Throughput of the sandbox as a normal user (user namespaces) vs as root, in one run.

Creates a real unprivileged user with koderz installed in a venv of its own (see
``tests/sandbox/unprivileged.py``; needs root), then runs the canonical solutions of
HumanEval+ (164 tasks, every input) through ``Sandbox`` with that venv's interpreter,
alternately as the user and as root, ``--rounds`` times each. Same interpreter, the same
ground truth (computed before timing, in a cache folder of each one's own: root reads none
the user can write), same machine load window: the ratio of the two is what user
namespaces cost. Prints a table and writes
``benchmarks/results/sandbox_unprivileged.json``.

    python benchmarks/sandbox_unprivileged.py [--rounds N] [--dataset humaneval_plus]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, product_state  # noqa: E402
from tests.sandbox.unprivileged import UnprivilegedKoderz, missing  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "sandbox_unprivileged.json"
MEASURE = (
    "import json, sys; from benchmarks.sandbox_throughput import run_koderz; print(json.dumps(run_koderz(sys.argv[1])))"
)


def _as_root(python: str, dataset: str, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    done = subprocess.run(
        [python, "-c", MEASURE, dataset], env=env, cwd=cwd, capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dataset", default="humaneval_plus")
    args = parser.parse_args()
    if reason := missing():
        raise SystemExit(f"sandbox_unprivileged: {reason}")
    rows: dict[str, list[dict[str, Any]]] = {"root": [], "user": []}
    with UnprivilegedKoderz() as user, tempfile.TemporaryDirectory(prefix="koderz-bench-root-") as root_home:
        cache = user.home / "cache"
        env = user.environment(KODERZ_CACHE_DIR=str(cache), PYTHONPATH=str(user.home / "src"))
        warm = f"from koderz.datasets.loaders import load_dataset; load_dataset({args.dataset!r})"
        user.run([user.python, "-c", warm], env=env, timeout=1800)  # ground truth, outside the timing
        root_env = dict(env, HOME=root_home, KODERZ_CACHE_DIR=str(Path(root_home) / "cache"))
        subprocess.run([user.python, "-c", warm], env=root_env, cwd=user.home, check=True, timeout=1800)
        for _ in range(args.rounds):
            rows["user"].append(json.loads(user.run([user.python, "-c", MEASURE, args.dataset], env=env).stdout))
            rows["root"].append(_as_root(user.python, args.dataset, root_env, user.home))
        leftovers = user.wait_for_no_processes()
    # other jobs share the machine: the least-disturbed run of each side (min) is the estimate,
    # the medians are reported beside it
    wall = {who: min(float(r["wall_s"]) for r in runs) for who, runs in rows.items()}
    cpu = {who: min(float(r["cpu_s"]) for r in runs) for who, runs in rows.items()}
    median = {who: statistics.median(float(r["wall_s"]) for r in runs) for who, runs in rows.items()}
    report = {
        "machine": machine(),
        "product": product_state(),
        "dataset": args.dataset,
        "interpreter": "the user's venv over /usr/bin/python3 (both runs)",
        "runs": rows,
        "user_over_root_wall": round(wall["user"] / wall["root"], 3),
        "user_over_root_cpu": round(cpu["user"] / cpu["root"], 3),
        "user_over_root_wall_median": round(median["user"] / median["root"], 3),
        "estimate": "ratios of the fastest run of each side; rounds alternate user, root",
        "user_processes_left": len(leftovers),
    }
    print("%-6s %8s %8s %9s %8s  %s" % ("as", "wall s", "cpu s", "peak MB", "passed", "mechanism / memory"))
    for who, runs in rows.items():
        for r in runs:
            iso = r["isolation"]
            print(
                "%-6s %8.2f %8.2f %9.1f %4d/%-3d  %s / %s"
                % (who, r["wall_s"], r["cpu_s"], r["peak_mb"], r["passed"], r["total"], iso["mechanism"], iso["memory"])
            )
    print(
        f"user / root on {args.dataset}: wall {report['user_over_root_wall']:.2f}x (median"
        f" {report['user_over_root_wall_median']:.2f}x), cpu {report['user_over_root_cpu']:.2f}x"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    os.chmod(RESULTS, 0o644)


if __name__ == "__main__":
    main()
