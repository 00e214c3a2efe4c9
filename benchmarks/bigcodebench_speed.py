"""Speed of koderz's BigCodeBench judging against ``bigcodebench.evaluate`` (bigcodebench 0.2.5's own
command, run as a separate tool) on the same samples file, with the verdict of every sample compared.

Both sides judge koderz's own BigCodeBench-format tasks (``koderz/datasets/data/bigcodebench/``) and
their 129 samples (canonical, wrong and hostile variants):

- reference: ``bigcodebench.evaluate --execution local --split complete --subset full`` with
  ``BIGCODEBENCH_OVERRIDE_PATH`` naming the task file, at each ``--parallel`` given (the best is the
  one compared), its ground-truth pass done beforehand (``--check_gt_only``, timed on its own; its
  cache then serves every run, as on a user's second run). Its only change, the same on both sides
  so that an infinite loop does not cost 241 s: ``TIMEOUT_LIMIT`` (per-task suite time) is
  ``--time-limit``, patched into its module before the command runs.
- koderz: ``BigCodeBenchEvaluator`` through the real sandbox with ``--workers`` slots, the fork server
  preloading the tasks' declared libraries (``preload_modules``), at each ``--workers`` given (the
  best is compared); ``--no-preload`` adds a run without, at that best setting.

Each side runs as a process in a session of its own; its wall clock is from start to exit (imports
included), its memory the peak of the summed PSS of its whole process tree (sampled every 0.1 s).
Writes ``benchmarks/results/bigcodebench_speed.json``. Never asserts on time.

    pip install -e '.[bigcodebench]' && pip install --no-deps bigcodebench==0.2.5 && pip install pqdm gradio_client e2b
    nice python benchmarks/bigcodebench_speed.py [--limit N] [--time-limit 5] [--workers 2 4] [--parallel 2 4]
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
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, write_json  # noqa: E402

DATA = ROOT / "koderz" / "datasets" / "data" / "bigcodebench"
TASKS = DATA / "bigcodebench-koderz-v0.1.jsonl"
SAMPLES = DATA / "samples.jsonl"
RESULT = ROOT / "benchmarks" / "results" / "bigcodebench_speed.json"
RUN_SECONDS = 3600.0  # one side's whole run
# bigcodebench.evaluate as its console script runs it, after the one patched constant
REFERENCE = """
import sys
import bigcodebench.eval as evaluation, bigcodebench.eval.utils as utils
evaluation.TIMEOUT_LIMIT = utils.TIMEOUT_LIMIT = float(sys.argv[1])
from bigcodebench.evaluate import main
sys.argv = ["bigcodebench.evaluate", *sys.argv[2:]]
main()
"""


@dataclass(frozen=True)
class Run:
    wall_seconds: float
    peak_pss_mb: float
    exit_code: int


def tree_pss(root: int) -> int:
    """Summed proportional set size (bytes) of ``root`` and its descendants (shared pages counted once)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo.extend(child for child, parent in parents.items() if parent == pid and child not in tree)
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                total += sum(int(line.split()[1]) * 1024 for line in handle if line.startswith("Pss:"))
        except OSError:
            continue
    return total


def measured(command: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Run:
    """Run ``command`` in a session of its own (killed with its whole group at the end); its wall
    clock and the peak PSS of its process tree."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_pss(proc.pid))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        code = proc.wait(timeout=RUN_SECONDS)
    finally:
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # bigcodebench's Manager processes outlive its checks
        proc.wait()
    return Run(round(wall, 2), round(peak / 2**20, 1), code)


def reference_env(cache: str) -> dict[str, str]:
    return {**os.environ, "BIGCODEBENCH_OVERRIDE_PATH": str(TASKS), "XDG_CACHE_HOME": cache}


def reference_args(samples: Path, parallel: int, task_ids: list[str]) -> list[str]:
    return ["--execution", "local", "--split", "complete", "--subset", "full", "--samples", str(samples),
            "--parallel", str(parallel), "--selective_evaluate", ",".join(task_ids)]  # fmt: skip


def reference_statuses(results: Path, samples: list[dict[str, Any]]) -> list[str]:
    """Each sample's status in bigcodebench's results (per task, in the samples file's order)."""
    per_task = json.loads(results.read_text())["eval"]
    seen: dict[str, int] = {}
    statuses = []
    for sample in samples:
        index = seen[sample["task_id"]] = seen.get(sample["task_id"], -1) + 1
        statuses.append(str(per_task[sample["task_id"]][index]["status"]))
    return statuses


def run_reference(samples: list[dict[str, Any]], parallel: list[int], time_limit: float) -> dict[str, Any]:
    task_ids = sorted({s["task_id"] for s in samples})
    with tempfile.TemporaryDirectory(prefix="koderz-bcb-speed-") as folder:
        env = reference_env(os.path.join(folder, "cache"))
        command = [sys.executable, "-c", REFERENCE, str(time_limit)]
        ground_truth = measured(
            [*command, *reference_args(Path(folder) / "none.jsonl", max(parallel), task_ids), "--check_gt_only"],
            env,
            folder,
        )
        runs = {}
        for workers in parallel:
            run_dir = Path(folder) / f"parallel-{workers}"
            run_dir.mkdir()
            file = run_dir / "samples.jsonl"
            file.write_text("".join(json.dumps({"task_id": s["task_id"], "solution": s["solution"]}) + "\n"
                                    for s in samples))  # fmt: skip
            run = measured([*command, *reference_args(file, workers, task_ids)], env, str(run_dir))
            if run.exit_code:
                raise SystemExit(f"bigcodebench.evaluate --parallel {workers} failed (exit {run.exit_code})")
            runs[workers] = {**run.__dict__, "statuses": reference_statuses(run_dir / "samples_eval_results.json",
                                                                             samples)}  # fmt: skip
    return {"ground_truth": ground_truth.__dict__, "runs": runs}


def run_koderz(args: argparse.Namespace, workers: int, preload: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="koderz-bcb-speed-") as folder:
        out = Path(folder) / "koderz.json"
        command = [sys.executable, __file__, "--koderz-only", str(out), "--workers", str(workers),
                   "--time-limit", str(args.time_limit)] + (["--limit", str(args.limit)] if args.limit else [])  # fmt: skip
        run = measured(command + ([] if preload else ["--no-preload"]), cwd=str(ROOT))
        if run.exit_code:
            raise SystemExit(f"the koderz run failed (exit {run.exit_code})")
        return {**run.__dict__, **json.loads(out.read_text())}


async def judge_with_koderz(samples: list[dict[str, Any]], workers: int, time_limit: float, preload: bool) -> dict:
    from koderz.bench.bigcodebench import BigCodeBenchEvaluator, BigCodeBenchJudging, preload_modules, sandbox_config
    from koderz.config import DatasetConfig
    from koderz.problems import load_benchmark
    from koderz.sandbox.sandbox import Sandbox, SandboxConfig

    problems = {p.task_id: p for p in load_benchmark(DatasetConfig(name="bigcodebench", path=str(TASKS)))}
    judging = BigCodeBenchJudging(time_limit=time_limit)
    modules = preload_modules(problems[s["task_id"]] for s in samples) if preload else ()
    sandbox = Sandbox(sandbox_config(SandboxConfig(max_processes=workers), judging, modules))
    evaluator = BigCodeBenchEvaluator(sandbox, judging)
    try:
        report = await sandbox.preload_report()
        judged = await asyncio.gather(*(evaluator.evaluate(problems[s["task_id"]], s["solution"]) for s in samples))
    finally:
        sandbox.close()
    return {
        "preloaded": list(report.loaded),
        "preload_failed": report.failed,
        "passed": [j.passed for j in judged],
        "statuses": [j.status for j in judged],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None, help="first N samples only")
    parser.add_argument("--workers", type=int, nargs="+", default=[os.cpu_count() or 1],
                        help="koderz's sandbox slots to try (the fastest is compared)")  # fmt: skip
    parser.add_argument("--parallel", type=int, nargs="+", default=[os.cpu_count() or 1],
                        help="bigcodebench.evaluate --parallel settings to try (the fastest is compared)")  # fmt: skip
    parser.add_argument("--time-limit", type=float, default=5.0)
    parser.add_argument("--no-preload", action="store_true", help="also time koderz without preloading")
    parser.add_argument("--koderz-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    samples = [json.loads(line) for line in SAMPLES.read_text().splitlines()][: args.limit]
    if args.koderz_only:
        preload = "--no-preload" not in sys.argv
        result = asyncio.run(judge_with_koderz(samples, args.workers[0], args.time_limit, preload))
        args.koderz_only.write_text(json.dumps(result))
        return
    reference = run_reference(samples, args.parallel, args.time_limit)
    best = min(reference["runs"], key=lambda w: reference["runs"][w]["wall_seconds"])
    ref = reference["runs"][best]
    koderz_runs = {workers: run_koderz(args, workers, preload=True) for workers in args.workers}
    workers = min(koderz_runs, key=lambda w: koderz_runs[w]["wall_seconds"])
    koderz = koderz_runs[workers]
    unloaded = run_koderz(args, workers, preload=False) if args.no_preload else None
    rows = [
        {"task_id": s["task_id"], "variant": s["variant"], "reference": status, "reference_passed": status == "pass",
         "koderz_passed": passed, "koderz_status": kstatus}
        for s, status, passed, kstatus in zip(samples, ref["statuses"], koderz["passed"], koderz["statuses"], strict=True)
    ]  # fmt: skip
    differ = [r for r in rows if r["reference_passed"] != r["koderz_passed"]]
    summary = {
        "machine": machine(),
        "reference": "bigcodebench==0.2.5 bigcodebench.evaluate --execution local (TIMEOUT_LIMIT patched)",
        "time_limit_seconds": args.time_limit,
        "samples": len(rows),
        "agree": len(rows) - len(differ),
        "differ": [{k: r[k] for k in ("task_id", "variant", "reference", "koderz_status")} for r in differ],
        "reference_ground_truth_pass": reference["ground_truth"],
        "reference_runs": {w: {k: v for k, v in r.items() if k != "statuses"} for w, r in reference["runs"].items()},
        "reference_best_parallel": best,
        "koderz_runs": {
            w: {k: v for k, v in r.items() if k in ("wall_seconds", "peak_pss_mb")} for w, r in koderz_runs.items()
        },
        "koderz": {k: v for k, v in koderz.items() if k not in ("passed", "statuses")} | {"workers": workers},
        "koderz_without_preload": (
            {k: v for k, v in unloaded.items() if k not in ("passed", "statuses", "preloaded")} if unloaded else None
        ),
        "speedup_wall": round(ref["wall_seconds"] / koderz["wall_seconds"], 2),
        "load_average_after": list(os.getloadavg()),
        "per_sample": rows,
    }
    write_json(RESULT, summary)
    print(f"{summary['agree']}/{len(rows)} verdicts agree; differ: {[(d['task_id'], d['variant']) for d in differ]}")
    print(f"wall: bigcodebench.evaluate --parallel {best} {ref['wall_seconds']:.1f} s (peak {ref['peak_pss_mb']} MB),"
          f" koderz {koderz['wall_seconds']:.1f} s (peak {koderz['peak_pss_mb']} MB, {workers} workers):"
          f" {summary['speedup_wall']}x")  # fmt: skip
    if unloaded:
        print(f"koderz without preloading: {unloaded['wall_seconds']:.1f} s (peak {unloaded['peak_pss_mb']} MB)")


if __name__ == "__main__":
    main()
