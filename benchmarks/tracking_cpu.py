"""Tracking's own CPU per run, this code against an earlier commit: a fixed cost plus a cost per problem.

    python benchmarks/tracking_cpu.py [--before REV] [--repeats 1] [--problems 164] [--latency 0.5]
                                      [--slow-problems 12] [--slow-latency 1.0]

With a CPU-bound model server on the same machine every CPU second the tracking worker takes shows
in generation time, so what matters is the worker's CPU. Three tracked runs per tree, the trees
alternating (``REV``, default ``HEAD``, is checked out with ``git archive`` into a temporary folder):

- the self-check: ``python -m koderz end=--problems cache=false`` (reference model, memory on);
- an API model against the scripted server (tests/support/fakes/scripted_server.py, canonical
  answers) at ``--latency`` s per call, ``concurrency=8``: problems finish while the worker logs;
- the slow case: ``--slow-problems`` problems at ``--slow-latency`` s per call, ``concurrency=1``:
  each problem finishes on its own, as with a local model, so each is a sync of its own.

The total is the worker's own figure (``koderz.tracking.follow.CPU_LINE``, its rusage at exit). The
per-problem part is measured the same way on both trees by a ``sitecustomize`` loaded into the
worker only: the CPU spent inside ``RunLogger.sync`` (every batch of finished problems: metrics,
traces, table appends), and inside ``koderz.tracking.follow.warm_up`` (importing mlflow); the rest
of the total is the fixed part (store, MLflow run, matplotlib, summary, files, figures). Writes
``benchmarks/results/tracking_cpu.json`` (``--out`` to write elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import PYTHON, ROOT, CanonicalModel, machine, product_state, scripted_model_args, write_json
from koderz.datasets.loaders import load_dataset
from koderz.records import RunFolder
from koderz.tracking.follow import CPU_LINE
from tests.support.fakes.scripted_server import ScriptedServer

RESULTS = ROOT / "benchmarks" / "results" / "tracking_cpu.json"
WORKER_CPU = re.compile(re.escape(CPU_LINE) + r" ([\d.]+) s")
PHASES_ENV = "KODERZ_BENCH_CPU_PHASES"

# Loaded by every Python process of a measured run (PYTHONPATH); acts in the tracking worker only.
INSTRUMENT = f'''
import os, sys
if os.environ.get("{PHASES_ENV}") and "koderz.tracking" in sys.orig_argv and "follow" in sys.orig_argv:
    import functools, json, resource, time
    import koderz.tracking.follow as follow
    import koderz.tracking.logger as logger
    spent = {{"sync": 0.0, "import": 0.0}}

    def timed(owner, name, key):
        inner = getattr(owner, name)

        @functools.wraps(inner)
        def outer(*args, **kwargs):
            began = time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[key] += time.process_time() - began

        setattr(owner, name, outer)

    timed(logger.RunLogger, "sync", "sync")
    timed(follow, "warm_up", "import")
    real_exit = os._exit

    def exit_after_dump(code):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        spent["rusage"] = usage.ru_utime + usage.ru_stime
        with open(os.path.join(os.environ["{PHASES_ENV}"], "phases.json"), "w") as out:
            json.dump(spent, out)
        real_exit(code)

    os._exit = exit_after_dump
'''


def run(tree: Path, instrument: Path, cwd: Path, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One tracked ``python -m koderz ARGS`` on ``tree``'s code; the worker's CPU, split."""
    folder = cwd / "runs" / f"{time.time_ns()}"
    phases = folder.with_name(folder.name + "-phases")
    phases.mkdir(parents=True)
    environment = dict(env, PYTHONPATH=f"{tree}{os.pathsep}{instrument}", **{PHASES_ENV: str(phases)})
    proc = subprocess.run(
        [PYTHON, "-m", "koderz", *args, f"hydra.run.dir={folder}"],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    results = folder / "results.json"
    if proc.returncode != 0 or not results.is_file():
        raise RuntimeError(f"koderz {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    problems = json.loads(results.read_text())["summary"]["problems"]
    found = WORKER_CPU.findall(RunFolder(folder).tracking_log_path.read_text())
    spent = json.loads((phases / "phases.json").read_text())
    total = float(found[-1]) if found else spent["rusage"]
    return {
        "problems": problems,
        "total_s": total,
        "import_mlflow_s": spent["import"],
        "fixed_s": total - spent["sync"],
        "problems_s": spent["sync"],
        "per_problem_ms": 1000 * spent["sync"] / max(1, problems),
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0] if key != "problems"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="HEAD", help="the earlier commit (default: HEAD)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--problems", type=int, default=164)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--slow-problems", type=int, default=12)
    parser.add_argument("--slow-latency", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | {"OPENAI_API_KEY": "sk-scripted"}
    problems = load_dataset("humaneval")
    result: dict[str, Any] = {
        "machine_before": machine(),
        "product": product_state(),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "rows": [],
    }
    with tempfile.TemporaryDirectory(prefix="koderz-trackcpu-") as tmp:
        base = Path(tmp)
        before = base / "before"
        before.mkdir()
        archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
        instrument = base / "instrument"
        instrument.mkdir()
        (instrument / "sitecustomize.py").write_text(INSTRUMENT)
        trees = {"before": before, "after": ROOT}
        cwd = base / "work"
        cwd.mkdir()
        fast_server = ScriptedServer(CanonicalModel(problems), latency=args.latency)
        slow_server = ScriptedServer(CanonicalModel(problems), latency=args.slow_latency)
        with fast_server.in_thread() as fast, slow_server.in_thread() as slow:
            scenarios = {
                f"self-check {args.problems}": [f"end={args.problems}", "cache=false"],
                f"api {args.problems} @ {args.latency} s, concurrency 8": [
                    *scripted_model_args(fast.openai_url),
                    f"end={args.problems}",
                    "concurrency=8",
                    "cortex=off",
                    "cache=false",
                ],
                f"api {args.slow_problems} @ {args.slow_latency} s, concurrency 1": [
                    *scripted_model_args(slow.openai_url),
                    f"end={args.slow_problems}",
                    "concurrency=1",
                    "cortex=off",
                    "cache=false",
                ],
            }
            run(ROOT, instrument, cwd, ["end=1", "cache=false"], env)  # the store made: not counted
            for name, koderz_args in scenarios.items():
                measured: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
                for repeat in range(args.repeats):
                    for label in ("before", "after") if repeat % 2 == 0 else ("after", "before"):
                        measured[label].append(run(trees[label], instrument, cwd, koderz_args, env))
                row = {"name": name, "runs": measured} | {k: summarize(v) for k, v in measured.items()}
                result["rows"].append(row)
                print(table([row]), flush=True)
    result["machine_after"] = machine()
    write_json(args.out, result)
    print(f"wrote {args.out}")


def table(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        for label in ("before", "after"):
            r = row[label]
            lines.append(
                f"{row['name']:<36} {label:<6} total {r['total_s']:5.2f} s = fixed {r['fixed_s']:5.2f} s "
                f"(mlflow import {r['import_mlflow_s']:4.2f} s) + problems {r['problems_s']:5.2f} s "
                f"({r['per_problem_ms']:5.1f} ms each)"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
