"""Parity of koderz's BigCodeBench verdicts with bigcodebench 0.2.5's own evaluator.

Both judge the same files: koderz's own tasks (``koderz/datasets/data/bigcodebench/``) and
their samples (canonical, wrong and hostile variants). The reference side is
``bigcodebench.eval.untrusted_check`` called as ``bigcodebench.evaluate.check_correctness``
calls it (its default memory limits; ``--workers`` at once, each in the process it forks); koderz's side is
``BigCodeBenchEvaluator`` through the real sandbox (``--workers`` slots). One deviation, the
same on both sides so that an infinite loop does not cost 241 s: the per-task time limit is
``--time-limit`` (bigcodebench: ``TIMEOUT_LIMIT``, patched; ``gt_time_limit`` 1 s so that the
limit is ``time_limit + 1`` as with its 240 s default).

Writes per-sample verdicts and the agreement to ``benchmarks/results/bigcodebench_parity.json``.

    pip install -e '.[parity,bigcodebench]'
    python benchmarks/bigcodebench_parity.py [--limit N] [--workers 2] [--time-limit 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, write_json  # noqa: E402
from koderz.bench.bigcodebench import BigCodeBenchEvaluator, BigCodeBenchJudging, sandbox_config  # noqa: E402
from koderz.config import DatasetConfig  # noqa: E402
from koderz.problems import load_benchmark  # noqa: E402
from koderz.sandbox.sandbox import Sandbox, SandboxConfig  # noqa: E402

DATA = ROOT / "koderz" / "datasets" / "data" / "bigcodebench"
TASKS = DATA / "bigcodebench-koderz-v0.1.jsonl"
SAMPLES = DATA / "samples.jsonl"
RESULT = ROOT / "benchmarks" / "results" / "bigcodebench_parity.json"
REFERENCE_LIMITS = {"max_as_limit": 30 * 1024, "max_data_limit": 30 * 1024, "max_stack_limit": 10}  # its defaults


def reference_check(solution: str, test: str, entry_point: str, time_limit: float) -> str:
    """One sample through bigcodebench 0.2.5's ``untrusted_check`` (in a pool worker)."""
    import bigcodebench.eval as reference

    status, _ = reference.untrusted_check(
        solution, test, entry_point, min_time_limit=1, gt_time_limit=1, **REFERENCE_LIMITS
    )
    return str(status)


def run_reference(samples: list[dict], tasks: dict[str, dict], workers: int, time_limit: float) -> list[str]:
    import bigcodebench.eval as reference

    reference.TIMEOUT_LIMIT = time_limit  # read by untrusted_check as a module global
    with ThreadPoolExecutor(max_workers=workers) as pool:  # each check forks its own process
        futures = [
            pool.submit(
                reference_check,
                s["solution"],
                tasks[s["task_id"]]["test"],
                tasks[s["task_id"]]["entry_point"],
                time_limit,
            )
            for s in samples
        ]
        return [f.result() for f in futures]


def stop_leftovers() -> None:
    """End the Manager processes the reference starts per check and never shuts down."""
    import multiprocessing

    for child in multiprocessing.active_children():
        child.terminate()
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join(5)


async def run_koderz(samples: list[dict], workers: int, time_limit: float) -> list[dict]:
    problems = {p.task_id: p for p in load_benchmark(DatasetConfig(name="bigcodebench", path=str(TASKS)))}
    judging = BigCodeBenchJudging(time_limit=time_limit)
    sandbox = Sandbox(sandbox_config(SandboxConfig(max_processes=workers), judging))
    evaluator = BigCodeBenchEvaluator(sandbox, judging)
    try:
        judged = await asyncio.gather(*(evaluator.evaluate(problems[s["task_id"]], s["solution"]) for s in samples))
    finally:
        sandbox.close()
    return [
        {"passed": j.passed, "status": j.status, "failing_test": j.failing_input, "message": j.error} for j in judged
    ]


def reference_in_own_session(args: argparse.Namespace) -> list[str]:
    """The reference side in a process of its own session; whatever it leaves behind (its
    checks' Manager processes outlive them) is killed with the session's process group."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "reference.json"
        command = [sys.executable, __file__, "--reference-only", str(out), "--workers", str(args.workers),
                   "--time-limit", str(args.time_limit)] + (["--limit", str(args.limit)] if args.limit else [])  # fmt: skip
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout=3600)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.returncode:
            raise SystemExit(f"the reference run failed (exit {proc.returncode})")
        return list(json.loads(out.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None, help="first N samples only")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--time-limit", type=float, default=5.0)
    parser.add_argument("--reference-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    tasks = {r["task_id"]: r for r in map(json.loads, TASKS.read_text().splitlines())}
    samples = [json.loads(line) for line in SAMPLES.read_text().splitlines()][: args.limit]
    if args.reference_only:
        try:
            args.reference_only.write_text(json.dumps(run_reference(samples, tasks, args.workers, args.time_limit)))
        finally:
            stop_leftovers()
        return
    started = time.perf_counter()
    reference = reference_in_own_session(args)
    reference_wall = time.perf_counter() - started
    started = time.perf_counter()
    koderz = asyncio.run(run_koderz(samples, args.workers, args.time_limit))
    koderz_wall = time.perf_counter() - started
    rows = [
        {"task_id": s["task_id"], "variant": s["variant"], "reference": ref, "reference_passed": ref == "pass",
         "koderz_passed": k["passed"], "koderz_status": k["status"], "koderz_message": k["message"]}
        for s, ref, k in zip(samples, reference, koderz, strict=True)
    ]  # fmt: skip
    differ = [r for r in rows if r["reference_passed"] != r["koderz_passed"]]
    summary = {
        "machine": machine(),
        "reference": "bigcodebench==0.2.5 untrusted_check",
        "time_limit_seconds": args.time_limit,
        "workers": args.workers,
        "samples": len(rows),
        "agree": len(rows) - len(differ),
        "differ": [
            {k: r[k] for k in ("task_id", "variant", "reference", "koderz_status", "koderz_message")} for r in differ
        ],
        "reference_passed": sum(r["reference_passed"] for r in rows),
        "koderz_passed": sum(r["koderz_passed"] for r in rows),
        "wall_seconds": {"reference": round(reference_wall, 1), "koderz": round(koderz_wall, 1)},
        "per_sample": rows,
    }
    write_json(RESULT, summary)
    print(f"{summary['agree']}/{len(rows)} verdicts agree; differ: {[(d['task_id'], d['variant']) for d in differ]}")
    print(f"wall: reference {reference_wall:.1f}s, koderz {koderz_wall:.1f}s ({args.workers} workers)")


if __name__ == "__main__":
    main()
