"""What the memory costs a run: process wall time of ``python -m koderz end=30 tracking=off``.

    python benchmarks/memory_path.py [--end 30] [--repeats 3]

Variants (each a real ``python -m koderz`` process, the reference model, HumanEval):

- ``off``          ``cortex=off``: no memory (the baseline of every ratio);
- ``local``        the default: the run writes ``outputs/cortex.db`` itself;
- ``persistent``   the old default: an embedded MCP server started and stopped by the run;
- ``shared-http``  ``cortex=external cortex.url=...``: a long-lived ``serve --http`` server on
                   127.0.0.1 shared by runs, i.e. the best a shared-daemon design can do.

Each repeat runs every variant twice in a fresh directory: ``first`` (no database yet,
for ``shared-http`` the server's start until it answers is added) and ``warm`` (the
database exists, the shared server is up, the specs of the first run are reused).
Variants are interleaved so machine load hits all alike. Prints a table of medians and
ratios to ``off``. Target: ``local`` warm adds <= 0.3 s to ``off``.

Second table, the local store inside one process (a run's number of records): open on
a new and on an existing file, ``remember`` (queues), the first read (stores the queue
first), close.

Third table, several processes on one store: 4 koderz-like writer processes
(``tests/cortex/concurrent_writer.py``) start at once and write ``--records`` records
each, to the local file (WAL + busy timeout) or through one shared ``serve --http``
server; wall time until all are done, records stored exactly once, lost writes,
"database is locked" errors. Everything goes to ``benchmarks/results/memory_path.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import PYTHON, ROOT, machine, product_state
from koderz.records import RunFolder

RESULTS = Path(__file__).resolve().parent / "results" / "memory_path.json"
WRITER = ROOT / "tests" / "cortex" / "concurrent_writer.py"
VARIANTS = {
    "off": ["cortex=off"],
    "local": [],
    "persistent": ["cortex=persistent"],
    "shared-http": ["cortex=external"],  # + cortex.url of the variant's server
}
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(db: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    """``serve --http`` on a free loopback port; (process, URL, seconds until it accepts)."""
    port = _free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [PYTHON, "-m", "koderz.cortex", "serve", "--db", str(db), "--http", f"127.0.0.1:{port}"],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"cortex server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}/mcp", time.perf_counter() - start
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("cortex server did not accept within 60 s") from None
            time.sleep(0.02)


def _children_cpu() -> float:
    """User + system CPU seconds of every finished child (and its waited-for children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(cwd: Path, args: list[str], end: int) -> dict[str, Any]:
    """One ``python -m koderz`` process in ``cwd``: wall seconds, problems passed, specs reused."""
    run_dir = cwd / f"run-{time.monotonic_ns()}"
    command = [PYTHON, "-m", "koderz", f"end={end}", "tracking=off", *args, f"hydra.run.dir={run_dir}"]
    cpu_before = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - start
    cpu = _children_cpu() - cpu_before
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-1500:]}")
    results = RunFolder(run_dir).read_results()
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "passed": sum(p.passed for p in results.problems),
        "specs_reused": sum(p.spec_reused for p in results.problems),
        "lost_writes": results.summary.memory_lost_writes,
    }


def one_repeat(name: str, end: int) -> dict[str, dict[str, Any]]:
    """The variant's first and warm run in a fresh directory."""
    with tempfile.TemporaryDirectory(prefix=f"memory-path-{name}-") as tmp:
        cwd = Path(tmp)
        args = list(VARIANTS[name])
        server = None
        startup = 0.0
        try:
            if name == "shared-http":
                server, url, startup = start_server(cwd / "outputs" / "cortex.db")
                args.append(f"cortex.url={url}")
            first = run(cwd, args, end)
            first["wall_s"] += startup  # the first run of the day starts the shared server
            first["server_start_s"] = startup
            warm = run(cwd, args, end)
        finally:
            if server is not None:
                server.terminate()
                try:
                    server.wait(10)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
    return {"first": first, "warm": warm}


def concurrent_writers(kind: str, writers: int, records: int) -> dict[str, Any]:
    """``writers`` writer processes at once on one fresh store (``local`` file or ``shared-http`` server)."""
    with tempfile.TemporaryDirectory(prefix=f"memory-writers-{kind}-") as tmp:
        db, go = Path(tmp) / "cortex.db", Path(tmp) / "go"
        server = None
        try:
            store = str(db)
            if kind == "shared-http":
                server, store, _ = start_server(db)
            procs = [
                subprocess.Popen(
                    [PYTHON, str(WRITER), store, str(w), str(records), str(go)],
                    env=ENV,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for w in range(writers)
            ]
            time.sleep(1.0)  # let every writer import and wait for the go file
            start = time.perf_counter()
            go.touch()
            outputs = [proc.communicate(timeout=600) for proc in procs]
            wall = time.perf_counter() - start
        finally:
            if server is not None:
                server.terminate()
                server.wait(10)
        if any(proc.returncode != 0 for proc in procs):
            raise RuntimeError(f"a writer failed: {[err[-500:] for _, err in outputs]}")
        conn = sqlite3.connect(db)
        titles = [t for (t,) in conn.execute("SELECT title FROM memories")]
        conn.close()
    expected = sorted(f"w{w} r{i}" for w in range(writers) for i in range(records))
    return {
        "wall_s": wall,
        "writer_s": [json.loads(out)["seconds"] for out, _ in outputs],
        "stored": len(titles),
        "exactly_once": sorted(titles) == expected,
        "lost_writes": sum(json.loads(out)["lost_writes"] for out, _ in outputs),
        "locked_errors": sum(err.count("database is locked") for _, err in outputs),
    }


async def _local_store_once(db: Path, records: int) -> dict[str, float]:
    from koderz.cortex import CortexConfig, MemoryRecord, open_memory_store

    start = time.perf_counter()
    async with open_memory_store(CortexConfig(db=str(db)), "bench", defer=True) as store:
        opened = time.perf_counter()
        session = await store.start_session("bench")
        for i in range(records):
            await store.remember(MemoryRecord(f"attempt {i}", "def f(xs):\n    return sorted(xs)\n" * 8, tags=("a",)))
        queued = time.perf_counter()
        await store.recall(tags=["a"], mode="recent", limit=1)
        recalled = time.perf_counter()
        if session:
            await store.end_session(session, "done")
        ending = time.perf_counter()
    closed = time.perf_counter()
    return {
        "open_s": opened - start,
        "remember_us": (queued - opened) / records * 1e6,
        "recall_with_flush_s": recalled - queued,
        "close_s": closed - ending,
    }


def in_process(repeats: int, records: int) -> dict[str, dict[str, float]]:
    """The local store inside one process: open (new file / existing), queue, first read, close."""
    import asyncio

    runs: dict[str, list[dict[str, float]]] = {"new file": [], "existing file": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="memory-local-") as tmp:
            db = Path(tmp) / "cortex.db"
            runs["new file"].append(asyncio.run(_local_store_once(db, records)))
            runs["existing file"].append(asyncio.run(_local_store_once(db, records)))
    return {
        kind: {key: round(statistics.median(r[key] for r in samples), 6) for key in samples[0]}
        for kind, samples in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--end", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--records", type=int, default=500, help="records per writer process")
    opts = parser.parse_args()
    load_at_start = list(os.getloadavg())

    samples: dict[str, dict[str, list[dict[str, Any]]]] = {n: {"first": [], "warm": []} for n in VARIANTS}
    for repeat in range(opts.repeats):
        for name in VARIANTS:
            result = one_repeat(name, opts.end)
            for phase in ("first", "warm"):
                samples[name][phase].append(result[phase])
            print(
                f"repeat {repeat + 1}: {name:12s} first {result['first']['wall_s']:.2f} s, warm {result['warm']['wall_s']:.2f} s"
            )

    summary: dict[str, dict[str, Any]] = {}
    for phase in ("first", "warm"):
        base = statistics.median(r["wall_s"] for r in samples["off"][phase])
        for name in VARIANTS:
            walls = [r["wall_s"] for r in samples[name][phase]]
            median = statistics.median(walls)
            pairs = zip(samples[name][phase], samples["off"][phase], strict=True)
            paired = [r["wall_s"] / o["wall_s"] for r, o in pairs]
            cpu = statistics.median(r["cpu_s"] for r in samples[name][phase])
            cpu_off = statistics.median(r["cpu_s"] for r in samples["off"][phase])
            summary.setdefault(name, {})[phase] = {
                "median_s": round(median, 3),
                "paired_ratio_to_off": round(statistics.median(paired), 3),
                "cpu_s": round(cpu, 3),
                "cpu_added_s": round(cpu - cpu_off, 3),
                "min_s": round(min(walls), 3),
                "max_s": round(max(walls), 3),
                "added_s": round(median - base, 3),
                "ratio_to_off": round(median / base, 3),
                "passed": [r["passed"] for r in samples[name][phase]],
                "specs_reused": [r["specs_reused"] for r in samples[name][phase]],
                "lost_writes": [r["lost_writes"] for r in samples[name][phase]],
            }

    print(f"\npython -m koderz end={opts.end} tracking=off: process wall, median of {opts.repeats}\n")
    print(
        "| variant | first s | first added s | first x off (paired) | first CPU added s"
        " | warm s | warm added s | warm x off (paired) | warm CPU added s | specs reused (warm) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, phases in summary.items():
        cells = [
            f"{p['median_s']:.2f} | {p['added_s']:+.2f} | {p['paired_ratio_to_off']:.2f}x | {p['cpu_added_s']:+.2f}"
            for p in (phases["first"], phases["warm"])
        ]
        reused = statistics.median(phases["warm"]["specs_reused"])
        print(f"| {name} | {cells[0]} | {cells[1]} | {reused:.0f}/{opts.end} |")
    print("(x off (paired): median over repeats of the variant's wall / the off run's of the same repeat;")
    print(" CPU: user+system seconds of the koderz process and its children; a shared server's own CPU is not in it)")
    target = summary["local"]["warm"]["added_s"] <= 0.3
    print(f"\ntarget: default (local) warm adds <= 0.3 s: {'met' if target else 'missed'}")

    local = in_process(opts.repeats, 6 * opts.end)
    print(f"\nthe local store in-process, {6 * opts.end} records (a run's), median of {opts.repeats}\n")
    print("| file | open s | remember µs | first read (stores the queue) s | close s |")
    print("|---|---:|---:|---:|---:|")
    for kind, figures in local.items():
        print(
            f"| {kind} | {figures['open_s']:.4f} | {figures['remember_us']:.0f}"
            f" | {figures['recall_with_flush_s']:.4f} | {figures['close_s']:.4f} |"
        )

    writers: dict[str, list[dict[str, Any]]] = {"local": [], "shared-http": []}
    for _ in range(opts.repeats):
        for kind in writers:
            writers[kind].append(concurrent_writers(kind, opts.writers, opts.records))
    local_wall = statistics.median(r["wall_s"] for r in writers["local"])
    print(f"\n{opts.writers} writer processes at once, {opts.records} records each, median of {opts.repeats}\n")
    print("| store | wall s | x local | records/s | stored exactly once | lost writes | locked errors |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for kind, runs in writers.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        print(
            f"| {kind} | {wall:.2f} | {wall / local_wall:.2f}x | {opts.writers * opts.records / wall:.0f}"
            f" | {all(r['exactly_once'] for r in runs)} | {sum(r['lost_writes'] for r in runs)}"
            f" | {sum(r['locked_errors'] for r in runs)} |"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": machine(),  # its load_average is the one at the end
                "load_average_at_start": load_at_start,
                "koderz": product_state(),
                "end": opts.end,
                "repeats": opts.repeats,
                "summary": summary,
                "samples": samples,
                "target_local_warm_added_le_0_3_s": target,
                "local_in_process": local,
                "concurrent_writers": {"writers": opts.writers, "records_each": opts.records, "runs": writers},
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
