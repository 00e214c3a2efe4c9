"""Parity of koderz's LiveCodeBench verdicts with LiveCodeBench's own evaluator.

Both judge the same files: koderz's own ``code_generation_lite`` problems
(``koderz/datasets/data/livecodebench/``) and their answers (right, wrong, crashing, slow,
differently formatted). The reference side is the ``testing_util.run_test`` shipped in
``nvidia-livecodebench`` 26.3, called through its ``check_correctness`` (its process and
global timeout) with the sample its ``CodeGenerationProblem.get_evaluation_sample`` builds,
and its pass rule (every test result > 0); koderz's side is ``LiveCodeBenchEvaluator``
through the real sandbox. Both use the per-test timeout ``--timeout`` (LiveCodeBench's
default 6 s).

Writes per-sample verdicts and the agreement to ``benchmarks/results/livecodebench_parity.json``.

    pip install -e '.[parity]'
    python benchmarks/livecodebench_parity.py [--limit N] [--workers 2] [--timeout 6]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, write_json  # noqa: E402
from koderz.bench.livecodebench import LiveCodeBenchEvaluator, LiveCodeBenchJudging  # noqa: E402
from koderz.config import DatasetConfig  # noqa: E402
from koderz.problems import load_benchmark  # noqa: E402
from koderz.sandbox.sandbox import Sandbox, SandboxConfig  # noqa: E402

DATA = ROOT / "koderz" / "datasets" / "data" / "livecodebench"
PROBLEMS = DATA / "code_generation_lite-koderz-v0.1.jsonl"
SAMPLES = DATA / "samples.jsonl"
RESULT = ROOT / "benchmarks" / "results" / "livecodebench_parity.json"


def reference_check(row: dict, code: str, timeout: int) -> list:
    """One answer through LiveCodeBench's own ``check_correctness`` (it forks the run_test process)."""
    from livecodebench.benchmarks.code_generation import CodeGenerationProblem
    from livecodebench.evaluation.compute_code_generation_metrics import check_correctness

    sample = CodeGenerationProblem(**row).get_evaluation_sample()
    result, _ = check_correctness(sample, code, timeout=timeout, debug=False)
    return [r.item() if hasattr(r, "item") else r for r in result]


def reference_passed(result: list) -> bool:
    """LiveCodeBench's ``compute_metrics_from_results``: ``np.all(np.array(results) > 0)``."""
    import numpy as np

    return bool(np.all(np.array(result) > 0))


def stop_leftovers() -> None:
    """End the Manager processes the reference starts per check and never shuts down."""
    import multiprocessing

    for child in multiprocessing.active_children():
        child.terminate()
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join(5)


async def run_koderz(items: list[tuple[str, str]], workers: int, per_test: int) -> list[dict]:
    problems = {p.task_id: p for p in load_benchmark(DatasetConfig(name="livecodebench", path=str(PROBLEMS)))}
    sandbox = Sandbox(SandboxConfig(max_processes=workers))
    evaluator = LiveCodeBenchEvaluator(sandbox, LiveCodeBenchJudging(timeout=per_test))
    try:
        judged = await asyncio.gather(*(evaluator.evaluate(problems[qid], code) for qid, code in items))
    finally:
        sandbox.close()
    return [{"passed": j.passed, "status": j.status, "message": j.feedback()} for j in judged]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None, help="first N answers only")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=6)
    args = parser.parse_args()
    rows = {r["question_id"]: r for r in map(json.loads, PROBLEMS.read_text().splitlines())}
    items = [
        (s["question_id"], code, variant)
        for s in map(json.loads, SAMPLES.read_text().splitlines())
        for code, variant in zip(s["code_list"], s["variants"], strict=True)
    ][: args.limit]
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            reference = list(pool.map(lambda item: reference_check(rows[item[0]], item[1], args.timeout), items))
    finally:
        stop_leftovers()
    reference_wall = time.perf_counter() - started
    started = time.perf_counter()
    koderz = asyncio.run(run_koderz([(q, c) for q, c, _ in items], args.workers, args.timeout))
    koderz_wall = time.perf_counter() - started
    per_sample = [
        {"question_id": q, "variant": v, "reference_results": ref, "reference_passed": reference_passed(ref),
         "koderz_passed": k["passed"], "koderz_status": k["status"], "koderz_message": k["message"]}
        for (q, _, v), ref, k in zip(items, reference, koderz, strict=True)
    ]  # fmt: skip
    differ = [r for r in per_sample if r["reference_passed"] != r["koderz_passed"]]
    summary = {
        "machine": machine(),
        "reference": "nvidia-livecodebench==26.3 testing_util.run_test via check_correctness",
        "timeout_seconds_per_test": args.timeout,
        "workers": args.workers,
        "samples": len(per_sample),
        "agree": len(per_sample) - len(differ),
        "differ": differ,
        "reference_passed": sum(r["reference_passed"] for r in per_sample),
        "koderz_passed": sum(r["koderz_passed"] for r in per_sample),
        "wall_seconds": {"reference": round(reference_wall, 1), "koderz": round(koderz_wall, 1)},
        "per_sample": per_sample,
    }
    write_json(RESULT, summary)
    print(
        f"{summary['agree']}/{len(per_sample)} verdicts agree; differ: {[(d['question_id'], d['variant']) for d in differ]}"
    )
    print(f"wall: reference {reference_wall:.1f}s, koderz {koderz_wall:.1f}s ({args.workers} workers)")


if __name__ == "__main__":
    main()
