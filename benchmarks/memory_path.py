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
ratios to ``off`` and writes ``benchmarks/results/memory_path.json``. Target: ``local``
warm adds <= 0.3 s to ``off``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import PYTHON, ROOT, machine, product_state

RESULTS = Path(__file__).resolve().parent / "results" / "memory_path.json"
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


def run(cwd: Path, args: list[str], end: int) -> dict[str, Any]:
    """One ``python -m koderz`` process in ``cwd``: wall seconds, problems passed, specs reused."""
    run_dir = cwd / f"run-{time.monotonic_ns()}"
    command = [PYTHON, "-m", "koderz", f"end={end}", "tracking=off", *args, f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-1500:]}")
    results = json.loads((run_dir / "results.json").read_text())
    problems = results["problems"]
    return {
        "wall_s": wall,
        "passed": sum(p["passed"] for p in problems),
        "specs_reused": sum(bool(p.get("spec_reused")) for p in problems),
        "lost_writes": results["summary"].get("memory_lost_writes", 0),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--end", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()

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
            summary.setdefault(name, {})[phase] = {
                "median_s": round(median, 3),
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
        "| variant | first s | first added s | first x off | warm s | warm added s | warm x off | specs reused (warm) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, phases in summary.items():
        first, warm = phases["first"], phases["warm"]
        print(
            f"| {name} | {first['median_s']:.2f} | {first['added_s']:+.2f} | {first['ratio_to_off']:.2f}x"
            f" | {warm['median_s']:.2f} | {warm['added_s']:+.2f} | {warm['ratio_to_off']:.2f}x"
            f" | {statistics.median(warm['specs_reused']):.0f}/{opts.end} |"
        )
    target = summary["local"]["warm"]["added_s"] <= 0.3
    print(f"\ntarget: default (local) warm adds <= 0.3 s: {'met' if target else 'missed'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": machine(),
                "koderz": product_state(),
                "end": opts.end,
                "repeats": opts.repeats,
                "summary": summary,
                "samples": samples,
                "target_local_warm_added_le_0_3_s": target,
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
