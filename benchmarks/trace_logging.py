"""Ways of writing one MLflow trace per problem, measured on the 164 traces of a real run.

    python benchmarks/trace_logging.py [--repeats 1]

A real run folder is made first (``python -m koderz tracking=off cortex=off``: reference model,
164 HumanEval tasks, 4 spans per problem: memory is off). Each option then runs in a fresh process against a
fresh copy of one migrated SQLite store (made once, untimed) and writes all 164 traces:

- ``sdk``: MLflow's tracing SDK, ``start_span_no_context`` per span (what koderz did before): the
  exporter writes every span in its own transaction, then the trace once more;
- ``sdk+wal``: the same with the store in WAL mode, ``synchronous=NORMAL``;
- ``batch-N+wal``: koderz's ``koderz.tracking.traces``: the spans of N traces in one
  ``log_spans`` call, then ``link_traces_to_run`` (N = 1, 32, 164);
- ``batch-32``: batches of 32 without WAL (the store's default journal).

Each option's wall and CPU seconds (its process, imports excluded) are medians of ``--repeats``;
every option's traces are counted in its store afterwards. Prints a table and writes
``benchmarks/results/trace_logging.json``.
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

from benchmarks.common import PYTHON, ROOT, machine, product_state, write_json

RESULTS = ROOT / "benchmarks" / "results" / "trace_logging.json"
OPTIONS = ("sdk", "sdk+wal", "batch-1+wal", "batch-32+wal", "batch-164+wal", "batch-32")


def measure(option: str, store: Path, folder: Path) -> dict[str, Any]:
    """In this (fresh) process: write the folder's traces to ``store`` the ``option`` way."""
    import mlflow

    from koderz.records import RunFolder
    from koderz.tracking import mlflow_tracker, traces

    if option.endswith("+wal"):
        mlflow_tracker._fast_sqlite()
    uri = f"sqlite:///{store}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("traces", artifact_location=(store.parent / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    run = RunFolder.existing(folder)
    records = {r.key: r for r in run.records()}
    found = run.traces()
    mlflow.set_tracking_uri(uri)
    wall, cpu = time.perf_counter(), time.process_time()
    if option.startswith("sdk"):
        for trace in found:
            _sdk_trace(mlflow, trace, experiment)
        mlflow.flush_trace_async_logging()
    else:
        size = int(option.split("-")[1].split("+")[0])
        built = [
            traces.build_trace(t, records.get(t_key(t)), run_key=run_id, finished_at=records[t_key(t)].finished_at)
            for t in found
        ]
        for start in range(0, len(built), size):
            traces.log_traces(client, experiment, run_id, built[start : start + size])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stored = mlflow.search_traces(locations=[experiment], return_type="list", max_results=1000)
    spans = sum(len(t.data.spans) for t in stored)
    return {"option": option, "wall_s": wall, "cpu_s": cpu, "traces": len(found), "stored": len(stored), "spans": spans}


def t_key(trace: Any) -> Any:
    return (trace.mode, trace.task_id)


def _sdk_trace(mlflow: Any, trace: Any, experiment_id: str) -> None:
    """MLflow's tracing SDK: a root span and a child per phase, each exported as it ends."""
    root = mlflow.start_span_no_context(
        trace.task_id,
        span_type="AGENT",
        inputs={"task_id": trace.task_id},
        experiment_id=experiment_id,
        start_time_ns=int(trace.start * 1e9),
    )
    for span in trace.spans:
        child = mlflow.start_span_no_context(
            span.name.value,
            parent_span=root,
            attributes=span.model_dump(mode="json", include={"iteration", "call", "verdict"}, exclude_none=True),
            start_time_ns=int(span.start * 1e9),
        )
        child.end(end_time_ns=int(span.end * 1e9))
    root.end(outputs={"passed": trace.passed}, end_time_ns=int(trace.end * 1e9))


def child(option: str, store: Path, folder: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [PYTHON, __file__, "--child", option, str(store), str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{option} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--child", nargs=3, metavar=("OPTION", "STORE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        option, store, folder = args.child
        print(json.dumps(measure(option, Path(store), Path(folder))))
        return
    result: dict[str, Any] = {"machine_before": machine(), "product": product_state(), "rows": []}
    with tempfile.TemporaryDirectory(prefix="koderz-traces-") as tmp:
        base = Path(tmp)
        folder = base / "run"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | {"PYTHONPATH": str(ROOT)}
        subprocess.run(
            [PYTHON, "-m", "koderz", "tracking=off", "cortex=off", f"hydra.run.dir={folder}"],
            cwd=base,
            env=env,
            capture_output=True,
            check=True,
            timeout=900,
        )
        template = base / "template.db"
        subprocess.run(
            [PYTHON, "-c", f"import mlflow; mlflow.MlflowClient('sqlite:///{template}').search_experiments()"],
            env=env,
            capture_output=True,
            check=True,
            timeout=600,
        )
        samples: dict[str, list[dict[str, Any]]] = {o: [] for o in OPTIONS}
        for repeat in range(args.repeats):
            for option in OPTIONS:
                store = base / f"{option}-{repeat}" / "mlflow.db"
                store.parent.mkdir()
                shutil.copyfile(template, store)
                samples[option].append(child(option, store, folder))
                print(f"{option:<16} {samples[option][-1]['wall_s']:7.2f} s", flush=True)
    for option, runs in samples.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        cpu = statistics.median(r["cpu_s"] for r in runs)
        result["rows"].append(
            {
                "option": option,
                "wall_s": wall,
                "cpu_s": cpu,
                "ms_per_trace": 1000 * wall / runs[0]["traces"],
                "cpu_ms_per_trace": 1000 * cpu / runs[0]["traces"],
                "traces": runs[0]["traces"],
                "stored": [r["stored"] for r in runs],
                "spans": runs[0]["spans"],
                "runs": runs,
            }
        )
    base_cpu = result["rows"][0]["cpu_s"]
    base_wall = result["rows"][0]["wall_s"]
    lines = [f"{'option':<16} {'wall s':>7} {'ms/trace':>9} {'cpu s':>7} {'wall x':>7} {'cpu x':>7} {'stored':>7}"]
    for r in result["rows"]:
        r["wall_ratio_to_sdk"] = r["wall_s"] / base_wall
        r["cpu_ratio_to_sdk"] = r["cpu_s"] / base_cpu
        lines.append(
            f"{r['option']:<16} {r['wall_s']:>7.2f} {r['ms_per_trace']:>9.1f} {r['cpu_s']:>7.2f}"
            f" {r['wall_ratio_to_sdk']:>7.2f} {r['cpu_ratio_to_sdk']:>7.2f} {min(r['stored']):>7}"
        )
    result["machine_after"] = machine()
    print("\n".join(lines))
    write_json(RESULTS, result)
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
