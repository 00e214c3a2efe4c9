"""The default job against ``tracking=off cortex=off``: process wall time as ratios in one run.

    python benchmarks/default_path.py [--repeats 1] [--api-problems 20] [--latency 0.3]

1. ``python -m koderz`` (the README's main job: reference model, all 164 HumanEval tasks) with
   its defaults (``tracking=mlflow`` with traces, ``cortex=local``) against ``tracking=off
   cortex=off`` (issue 13's comparison), then tracking's cost alone (``cortex=off`` both sides).
   Tracked runs go into a fresh store (a new user's first run: MLflow creates its tables) and
   into a store that exists (every later run), each with the tracking server starting (the
   run starts it and waits for its mlflow imports: a first run, or the first after ten idle
   minutes) and with the server up (the run's worker is forked with mlflow imported).
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
import shutil
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


def store_check(folder: Path) -> dict[str, Any]:
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


VARIANTS = ("fresh_server_starting", "existing_server_up", "existing_server_starting", "fresh_server_up")


def stop_tracking_servers() -> None:
    """Stop the benchmark's tracking servers and wait until they are gone (a server still up
    would make a "server starting" figure a "server up" one)."""
    from koderz.tracking.server import server_dir, stop_servers

    stop_servers()
    deadline = time.monotonic() + 60
    while list(server_dir().glob("*.sock")):
        if time.monotonic() > deadline:
            raise RuntimeError(f"a tracking server in {server_dir()} did not stop")
        time.sleep(0.05)
    time.sleep(0.5)  # its last CPU time spent before the next timed run


def compare(
    name: str, base_args: list[str], env: dict[str, str], repeats: int, baseline: tuple[str, ...] = ("tracking=off",)
) -> dict[str, Any]:
    """``baseline`` settings vs tracked runs into a fresh and an existing store, with the
    tracking server starting and up (``VARIANTS``, in that order in each repeat)."""
    walls: dict[str, list[float]] = {"off": [], **{variant: [] for variant in VARIANTS}}
    checks = []
    passed = set()
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="koderz-bench-") as tmp:
            first, second = Path(tmp) / "a", Path(tmp) / "b"
            first.mkdir()
            second.mkdir()
            run(first, [*base_args, *baseline], env)  # warm-up: page cache, expected outputs
            off = run(first, [*base_args, *baseline], env)
            walls["off"].append(off["wall_s"])
            tracked = {}
            for variant in VARIANTS:
                if variant.endswith("starting"):
                    stop_tracking_servers()
                cwd = second if variant == "fresh_server_up" else first  # a new store in a new folder
                tracked[variant] = run(cwd, base_args, env)
                walls[variant].append(tracked[variant]["wall_s"])
            passed |= {off["passed"], *(t["passed"] for t in tracked.values())}
            checks.append({variant: store_check(tracked[variant]["folder"]) for variant in VARIANTS})
    stop_tracking_servers()
    median = {key: statistics.median(values) for key, values in walls.items()}
    return {
        "name": name,
        "args": base_args,
        "baseline": list(baseline),
        "wall_s": median,
        "walls": walls,
        "ratios": {variant: median[variant] / median["off"] for variant in VARIANTS},
        "passed": sorted(passed),
        "store": checks[-1],
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = f"{'scenario (vs baseline)':<34} {'base s':>7}" + "".join(
        f" {v.replace('_server_', ' ')[:16]:>17}" for v in VARIANTS
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = "".join(f" {r['wall_s'][v]:>8.1f} s {r['ratios'][v]:>5.2f}x" for v in VARIANTS)
        lines.append(f"{r['name']:<34} {r['wall_s']['off']:>7.1f}{cells}")
    for r in rows:
        s = r["store"]["existing_server_up"]
        if s.get("logged"):
            lines.append(
                f"{r['name']}: {s['status']}, rows={s['table_rows']}, traces={s['traces']} (existing store, server up)"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--api-problems", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.3)
    args = parser.parse_args()
    servers = tempfile.mkdtemp(prefix="kz-bench-")  # this benchmark's tracking servers only
    os.environ["KODERZ_TRACKING_SERVER_DIR"] = servers
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    load_dataset("humaneval")  # ground truth cached before anything is timed
    result: dict[str, Any] = {"machine_before": machine(), "product": product_state(), "goals": GOALS, "rows": []}
    scenarios = [  # (name, args, baseline): the comparison first, then tracking's cost alone
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
        row["meets_goal"] = {variant: ratio <= row["goal"] for variant, ratio in row["ratios"].items()}
    print(table(result["rows"]))
    shutil.rmtree(servers, ignore_errors=True)
    write_json(RESULTS, result)
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
