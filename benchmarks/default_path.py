"""The default job against ``tracking=off cortex=off``: process wall time as ratios in one run.

    python benchmarks/default_path.py [--repeats 1] [--api-problems 20] [--latency 0.3]

1. ``python -m koderz`` (the README's main job: reference model, all 164 HumanEval tasks) with
   its defaults (``tracking=mlflow`` with traces, ``cortex=local``) against ``tracking=off
   cortex=off`` (issue 13's comparison), then tracking's cost alone (``cortex=off`` both sides).
   Tracked runs go into a fresh store (a new user's first run: MLflow creates its tables) and
   into a store that exists (every later run).
2. ``--api-problems`` problems with an API model (gpt-4o-mini's config) against the scripted
   OpenAI-format server (tests/fakes/scripted_server.py, canonical answers) at ``--latency``,
   defaults against ``tracking=off cortex=off``.

Every tracked run is checked in its store afterwards: run status, rows of the problem table,
traces linked to the run, artifacts. All runs use ``cache=false`` (no result cache); each
comparison runs in a new directory after an untimed warm-up run of the baseline. Each figure
is the median of ``--repeats`` runs. Goals: HumanEval <= 1.3x, API <= 1.15x the baseline.
Prints a table and writes ``benchmarks/results/default_path.json``.
"""

from __future__ import annotations

import argparse
import json
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
from tests.fakes.scripted_server import ScriptedServer

RESULTS = ROOT / "benchmarks" / "results" / "default_path.json"
GOALS = {"humaneval": 1.3, "api": 1.15}
BOTH_OFF = ("tracking=off", "cortex=off")


def run(cwd: Path, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One timed ``python -m koderz ARGS`` in ``cwd`` (its outputs/ there); wall and what it left."""
    folder = cwd / "runs" / f"{time.time_ns()}"
    environment = dict(env, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    done = subprocess.run(
        [PYTHON, "-m", "koderz", *args, f"hydra.run.dir={folder}"],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    wall = time.perf_counter() - start
    results = folder / "results.json"
    if done.returncode != 0 or not results.is_file():
        raise RuntimeError(f"koderz {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(results.read_text())["summary"]
    return {"wall_s": wall, "folder": folder, "passed": summary["passed"], "problems": summary["problems"]}


def store_check(cwd: Path, folder: Path) -> dict[str, Any]:
    """What the MLflow store holds for the run of ``folder``."""
    import mlflow

    from koderz.records import RunFolder

    progress = RunFolder(folder).read_tracking()
    if progress is None:
        return {"logged": False}
    client = mlflow.MlflowClient(progress.uri)
    mlflow.set_tracking_uri(progress.uri)
    try:
        found = client.get_run(progress.mlflow_run_id)
        table = client.load_table(progress.experiment_id, "problems.json", run_ids=[progress.mlflow_run_id])
        traces = mlflow.search_traces(
            locations=[progress.experiment_id], run_id=progress.mlflow_run_id, return_type="list"
        )
        artifacts = sorted(a.path for a in client.list_artifacts(progress.mlflow_run_id))
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    return {
        "logged": True,
        "status": found.info.status,
        "tracking_tag": found.data.tags.get("koderz.tracking"),
        "table_rows": len(table),
        "traces": len(traces),
        "artifacts": artifacts,
        "pass_rate": found.data.metrics.get("pass_rate"),
    }


def compare(
    name: str, base_args: list[str], env: dict[str, str], repeats: int, baseline: tuple[str, ...] = ("tracking=off",)
) -> dict[str, Any]:
    """``baseline`` settings vs tracked into a fresh store vs tracked into an existing store."""
    walls: dict[str, list[float]] = {"off": [], "mlflow_fresh_store": [], "mlflow_existing_store": []}
    checks = []
    passed = set()
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="koderz-bench-") as tmp:
            cwd = Path(tmp)
            run(cwd, [*base_args, *baseline], env)  # warm-up: page cache, expected outputs
            off = run(cwd, [*base_args, *baseline], env)
            walls["off"].append(off["wall_s"])
            fresh = run(cwd, base_args, env)  # creates cwd/outputs/mlflow.db
            walls["mlflow_fresh_store"].append(fresh["wall_s"])
            existing = run(cwd, base_args, env)
            walls["mlflow_existing_store"].append(existing["wall_s"])
            passed |= {off["passed"], fresh["passed"], existing["passed"]}
            checks.append(
                {"fresh": store_check(cwd, fresh["folder"]), "existing": store_check(cwd, existing["folder"])}
            )
    median = {key: statistics.median(values) for key, values in walls.items()}
    return {
        "name": name,
        "args": base_args,
        "baseline": list(baseline),
        "wall_s": median,
        "walls": walls,
        "ratio_fresh": median["mlflow_fresh_store"] / median["off"],
        "ratio_existing": median["mlflow_existing_store"] / median["off"],
        "passed": sorted(passed),
        "store": checks[-1],
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = f"{'scenario (vs baseline)':<34} {'base s':>7} {'fresh s':>8} {'exist s':>8} {'fresh x':>8} {'exist x':>8}  store (existing)"
    lines = [head, "-" * len(head)]
    for r in rows:
        w, s = r["wall_s"], r["store"]["existing"]
        store = f"{s.get('status')} rows={s.get('table_rows')} traces={s.get('traces')}" if s.get("logged") else "-"
        lines.append(
            f"{r['name']:<34} {w['off']:>7.1f} {w['mlflow_fresh_store']:>8.1f} {w['mlflow_existing_store']:>8.1f}"
            f" {r['ratio_fresh']:>8.2f} {r['ratio_existing']:>8.2f}  {store}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--api-problems", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.3)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    load_dataset("humaneval")  # ground truth cached before anything is timed
    result: dict[str, Any] = {"machine_before": machine(), "product": product_state(), "goals": GOALS, "rows": []}
    scenarios = [  # (name, args, baseline): the issue's comparison first, then tracking's cost alone
        ("humaneval 164, default", ["cache=false"], BOTH_OFF),
        ("humaneval 164, cortex=off", ["cortex=off", "cache=false"], ("tracking=off",)),
    ]
    for name, run_args, baseline in scenarios:
        row = compare(name, run_args, env, args.repeats, baseline)
        row["goal"] = GOALS["humaneval"]
        result["rows"].append(row)
        print(table(result["rows"][-1:]), flush=True)
    problems = load_dataset("humaneval")
    with ScriptedServer(CanonicalModel(problems), latency=args.latency).in_thread() as server:
        api_args = [*scripted_model_args(server.openai_url), f"end={args.api_problems}", "cache=false"]
        api_env = dict(env, OPENAI_API_KEY="sk-scripted-bench")
        name = f"api {args.api_problems} @ {args.latency:.1f}s, default"
        row = compare(name, api_args, api_env, args.repeats, BOTH_OFF)
        row["goal"] = GOALS["api"]
        result["rows"].append(row)
    result["machine_after"] = machine()
    for row in result["rows"]:
        row["meets_goal_existing_store"] = row["ratio_existing"] <= row["goal"]
        row["meets_goal_fresh_store"] = row["ratio_fresh"] <= row["goal"]
    print(table(result["rows"]))
    write_json(RESULTS, result)
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
