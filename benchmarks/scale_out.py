"""Scale-out: the same 4-job sweeps through the basic launcher (serial), joblib and SLURM.

    python benchmarks/scale_out.py [--repeats 1]

Two 4-job sweeps, with ``tracking=off cortex=off`` (so the launchers are what differs):

- ``cpu``: ``model=reference dataset=humaneval,mbpp_plus mode=zero_shot,iterative end=3``,
  the built-in model: each job is start-up plus a few sandboxed programs (CPU-bound);
- ``io``: ``seed=1,2 mode=zero_shot,iterative end=10`` against a scripted OpenAI-compatible
  fake (``tests/support/fakes/scripted_server.py``, each task's canonical solution) answering after
  0.3 s, like a remote model: each job mostly waits (``cache=false``).

Launchers:

- ``basic``: Hydra's default, one job after the other in the sweep's own process;
- ``joblib``: ``hydra/launcher=joblib hydra.launcher.n_jobs=4`` (4 local processes);
- ``slurm``: ``hydra/launcher=slurm`` on the local cluster of ``scripts/slurm-local.sh``
  (one CPU per job, ``--oversubscribe`` so all 4 run at once on the 2-CPU node); skipped
  when the cluster is not up.

Per launcher: the sweep's wall time (median of ``--repeats``), the jobs' own run time
(``duration`` in each results.json, summed), and the per-job overhead
``(wall x slots - summed run time) / jobs``: the slot-seconds each job spends outside
koderz's runner (interpreter start, Hydra, imports, the launcher's submission, scheduling
and polling, idle slots). Prints a table and writes ``benchmarks/results/scale_out.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    PYTHON,
    ROOT,
    CanonicalModel,
    machine,
    product_state,
    scripted_model_args,
    write_json,
)
from koderz.datasets.loaders import load_dataset
from koderz.records import RunFolder
from tests.support.fakes.scripted_server import ScriptedServer

RESULTS = ROOT / "benchmarks" / "results" / "scale_out.json"
LATENCY = 0.3
SWEEPS = {
    "cpu": ["model=reference", "dataset=humaneval,mbpp_plus", "mode=zero_shot,iterative", "end=3"],
    "io": ["seed=1,2", "mode=zero_shot,iterative", "end=10", "cache=false"],
}
JOBS = 4
LAUNCHERS: dict[str, tuple[list[str], int]] = {  # name -> (overrides, jobs at once)
    "basic": ([], 1),
    "joblib": (["hydra/launcher=joblib", f"hydra.launcher.n_jobs={JOBS}"], JOBS),
    "slurm": (
        [
            "hydra/launcher=slurm",
            "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.mem_gb=1",
            "+hydra.launcher.additional_parameters.oversubscribe=true",
        ],
        JOBS,
    ),
}


def slurm_conf() -> str | None:
    """SLURM_CONF of the local cluster when it is up, else None."""
    script = ROOT / "scripts" / "slurm-local.sh"
    status = subprocess.run(["bash", str(script), "status"], capture_output=True, text=True, timeout=60)
    if status.returncode != 0:
        return None
    env = subprocess.run(["bash", str(script), "env"], capture_output=True, text=True, timeout=60, check=True)
    return env.stdout.strip().removeprefix("export SLURM_CONF=")


def sweep_once(sweep: list[str], overrides: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One timed sweep in a fresh directory; the jobs' own durations from their run folders."""
    with tempfile.TemporaryDirectory(prefix="koderz-scale-") as tmp:
        cmd = [PYTHON, "-m", "koderz", "-m", f"hydra.sweep.dir={tmp}/sweep", *sweep, "tracking=off", "cortex=off"]
        start = time.perf_counter()
        done = subprocess.run([*cmd, *overrides], cwd=tmp, env=env, capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"sweep failed ({done.returncode}): {done.stderr[-2000:]}")
        summaries = [
            RunFolder(p.parent).read_results().summary for p in Path(tmp, "sweep").rglob("results.json")
        ]  # URL overrides nest folders
    if len(summaries) != JOBS or any(s.passed != s.problems for s in summaries):
        raise RuntimeError(f"expected {JOBS} jobs passing every problem, got {summaries}")
    return {"wall_s": wall, "run_s": sum(s.duration for s in summaries)}


def measure(workload: str, sweep: list[str], name: str, repeats: int, conf: str | None) -> dict[str, Any]:
    overrides, slots = LAUNCHERS[name]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {"PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-scripted-benchmark"}
    if name == "slurm":
        if conf is None:
            return {"workload": workload, "launcher": name, "skipped": "no local SLURM cluster (slurm-local.sh start)"}
        env["SLURM_CONF"] = conf
    samples = [sweep_once(sweep, overrides, env) for _ in range(repeats)]
    wall = statistics.median(s["wall_s"] for s in samples)
    run = statistics.median(s["run_s"] for s in samples)
    return {
        "workload": workload,
        "launcher": name,
        "overrides": overrides,
        "slots": slots,
        "wall_s": wall,
        "run_s": run,
        "overhead_per_job_s": (wall * slots - run) / JOBS,
        "samples": samples,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'workload':<8} {'launcher':<8} {'slots':>5} {'wall s':>8} {'x basic':>8} {'run s (sum)':>12} {'overhead/job s':>15}"
    )
    for row in rows:
        if "skipped" in row:
            print(f"{row['workload']:<8} {row['launcher']:<8} skipped: {row['skipped']}")
            continue
        print(
            f"{row['workload']:<8} {row['launcher']:<8} {row['slots']:>5} {row['wall_s']:>8.1f}"
            f" {row['speedup_vs_basic']:>8.2f} {row['run_s']:>12.1f} {row['overhead_per_job_s']:>15.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    conf = slurm_conf()
    rows = []
    with ScriptedServer(CanonicalModel(load_dataset("humaneval")), latency=LATENCY).in_thread() as server:
        for workload, sweep in SWEEPS.items():
            if workload == "io":
                sweep = [*sweep, *scripted_model_args(server.openai_url)]
            measured = [measure(workload, sweep, name, args.repeats, conf) for name in LAUNCHERS]
            for row in measured:
                if "wall_s" in row:
                    row["speedup_vs_basic"] = measured[0]["wall_s"] / row["wall_s"]
            rows += measured
    print_table(rows)
    write_json(
        RESULTS,
        {"machine": machine(), "product": product_state(), "sweeps": SWEEPS, "latency_s": LATENCY, "rows": rows},
    )
    print(f"\nwritten {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
