"""Cortex overhead: ephemeral (server per operation) vs persistent (one session) vs batched.

    /work/venv/bin/python benchmarks/cortex_overhead.py [--problems 20] [--ephemeral-ops 10]

Measures, against the embedded server on a fresh SQLite file in a temp dir:
1. per-operation latency (p50/p95) of ``remember`` in each mode, and of a filtered
   ``recall`` (a task's tag and ``spec``, ``limit=1``, like a run's spec lookup) over
   ``--memories`` stored memories (persistent);
2. a simulated run's memory operations (``start_session``, then per problem 1 spec +
   3 attempts + 1 result ``remember``, then ``end_session``): total time spent in cortex;
3. write throughput: single ``remember`` calls vs ``remember_batch`` vs the write-behind
   buffer (``write_buffer``);
4. the MCP SDK's floor: a tool that does nothing, called as often as the recall, over
   stdio (wall p50, and CPU per call in client and server: what load does not inflate).
Prints a table and writes ``benchmarks/results/cortex_overhead.json``. Goals:
filtered recall p50 <= 2 ms, ephemeral/persistent p50 >= 300x, batched >= 5x single.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from koderz.cortex.client import CortexClient, ServerTarget
from koderz.cortex.store import MemoryRecord

RESULTS = Path(__file__).resolve().parent / "results" / "cortex_overhead.json"


def _record(i: int, kind: str = "attempt") -> MemoryRecord:
    return MemoryRecord(
        title=f"{kind} {i}",
        content=f"def solution_{i}(xs):\n    return sorted(xs)\n" * 4,
        category=kind,
        tags=("bench-run", kind, f"HumanEval/{i % 164}"),
        metadata={"passed": i % 3 == 0, "tests_passed": i % 7, "tests_total": 7},
    )


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _timed(op: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await op()
    return time.perf_counter() - start


async def latency(client: CortexClient, n: int) -> dict[str, float]:
    samples = [await _timed(partial(client.remember, _record(i))) for i in range(n)]
    return {
        "n": n,
        "p50_ms": _percentile(samples, 0.5) * 1e3,
        "p95_ms": _percentile(samples, 0.95) * 1e3,
        "mean_ms": statistics.fmean(samples) * 1e3,
    }


async def filtered_recall(client: CortexClient, memories: int, n: int) -> dict[str, float]:
    """``memories`` stored, then ``n`` recalls by a task tag + ``spec`` (newest, ``limit=1``)."""
    records = [_record(i, "spec" if i % 5 == 0 else "attempt") for i in range(memories)]
    await client.remember_batch(records)
    for i in range(10):  # warm-up
        await client.recall(tags=["spec", f"HumanEval/{i % 164}"], mode="recent", limit=1)
    samples = []
    server_pid = int((await client.stats())["server_pid"])
    cpu_client, cpu_server = time.process_time(), _cpu_seconds(server_pid)
    for i in range(n):
        tags = ["spec", f"HumanEval/{(i * 7) % 164}"]
        samples.append(await _timed(partial(client.recall, tags=tags, mode="recent", limit=1)))
    cpu_client, cpu_server = time.process_time() - cpu_client, _cpu_seconds(server_pid) - cpu_server
    return {
        "memories": memories,
        "n": n,
        "p50_ms": _percentile(samples, 0.5) * 1e3,
        "p95_ms": _percentile(samples, 0.95) * 1e3,
        # CPU per recall (client process, server process): what the machine's load does not inflate
        "client_cpu_ms": cpu_client / n * 1e3,
        "server_cpu_ms": cpu_server / n * 1e3,
    }


PING_SERVER = """
import os
from mcp.server.mcpserver import MCPServer
server = MCPServer("ping", log_level="WARNING")
@server.tool()
async def ping() -> dict[str, int]:
    return {"pid": os.getpid()}
server.run("stdio")
"""


async def sdk_floor(folder: Path, n: int) -> dict[str, float]:
    """The MCP SDK's own cost: ``n`` calls of a tool that does nothing, over stdio (the floor under recall)."""
    script = folder / "ping_server.py"
    script.write_text(PING_SERVER)
    params = StdioServerParameters(command=sys.executable, args=[str(script)])
    async with Client(stdio_client(params), read_timeout_seconds=60) as client:
        pid = int((await client.call_tool("ping", {})).structured_content["pid"])
        for _ in range(10):
            await client.call_tool("ping", {})
        cpu_client, cpu_server = time.process_time(), _cpu_seconds(pid)
        samples = [await _timed(lambda: client.call_tool("ping", {})) for _ in range(n)]
        cpu_client, cpu_server = time.process_time() - cpu_client, _cpu_seconds(pid) - cpu_server
    return {
        "n": n,
        "p50_ms": _percentile(samples, 0.5) * 1e3,
        "client_cpu_ms": cpu_client / n * 1e3,
        "server_cpu_ms": cpu_server / n * 1e3,
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def simulated_run(client: CortexClient, problems: int) -> dict[str, float]:
    """The memory traffic of a ``problems``-problem run; seconds spent in cortex calls."""
    start = time.perf_counter()
    session = await client.start_session("bench run") or ""
    spent = time.perf_counter() - start
    for p in range(problems):
        spent += await _timed(partial(client.remember, _record(p, "spec")))
        for a in range(3):
            spent += await _timed(partial(client.remember, _record(p * 3 + a)))
        spent += await _timed(partial(client.remember, _record(p, "result")))
    spent += await _timed(lambda: client.end_session(session, "bench summary"))
    return {"problems": problems, "operations": problems * 5 + 2, "cortex_seconds": spent}


async def throughput(target: ServerTarget, n: int, batch: int) -> dict[str, float]:
    rows: dict[str, float] = {}
    async with CortexClient(target) as client:
        rows["single"] = n / await _timed(lambda: _singles(client, n))
        records = [_record(i) for i in range(n)]
        rows["batched"] = n / await _timed(lambda: _batches(client, records, batch))
        rows["single_64_tasks"] = n / await _timed(lambda: _concurrent(client, n, 64))
    async with CortexClient(target, write_buffer=batch, flush_interval=60.0) as buffered:
        rows["write_buffer"] = n / await _timed(lambda: _singles_flushed(buffered, n))
    return rows


async def _singles(client: CortexClient, n: int) -> None:
    for i in range(n):
        await client.remember(_record(i))


async def _singles_flushed(client: CortexClient, n: int) -> None:
    await _singles(client, n)
    await client.flush()


async def _batches(client: CortexClient, records: list[MemoryRecord], batch: int) -> None:
    for start in range(0, len(records), batch):
        await client.remember_batch(records[start : start + batch])


async def _concurrent(client: CortexClient, n: int, tasks: int) -> None:
    async def worker(w: int) -> None:
        for i in range(w, n, tasks):
            await client.remember(_record(i))

    await asyncio.gather(*(worker(w) for w in range(tasks)))


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cortex-bench-") as tmp:
        target = ServerTarget.embedded(Path(tmp) / "bench.db")
        persistent = CortexClient(target)
        connect_s = await _timed(persistent.connect)  # start the server + MCP handshake
        try:
            await latency(persistent, 20)  # warm-up
            lat_p = await latency(persistent, args.persistent_ops)
            run_p = await simulated_run(persistent, args.problems)
            recall_p = await filtered_recall(persistent, args.memories, args.recalls)
        finally:
            await persistent.aclose()
        async with CortexClient(target, persistent=False) as ephemeral:
            lat_e = await latency(ephemeral, args.ephemeral_ops)
            run_e = await simulated_run(ephemeral, args.problems)
        thr = await throughput(target, args.writes, args.batch)
        floor = await sdk_floor(Path(tmp), args.recalls)
    ratio = lat_e["p50_ms"] / lat_p["p50_ms"]
    speedup = thr["batched"] / thr["single"]
    return {
        "filtered_recall_persistent": recall_p,
        "sdk_floor_empty_tool": floor,
        "latency": {"persistent": lat_p, "ephemeral": lat_e, "ephemeral_over_persistent_p50": ratio},
        "simulated_run": {
            "persistent": run_p,
            "ephemeral": run_e,
            "ephemeral_over_persistent": run_e["cortex_seconds"] / run_p["cortex_seconds"],
        },
        "throughput_records_per_s": {
            **thr,
            "batch_size": args.batch,
            "writes": args.writes,
            "batched_over_single": speedup,
        },
        "persistent_connect_s": connect_s,
        "goals": {
            "persistent_p50_le_2ms": lat_p["p50_ms"] <= 2.0,
            "filtered_recall_p50_le_2ms": recall_p["p50_ms"] <= 2.0,
            "ephemeral_over_persistent_ge_300x": ratio >= 300,
            "batched_ge_5x_single": speedup >= 5,
        },
    }


def render(result: dict[str, Any]) -> str:
    lat, run, thr = result["latency"], result["simulated_run"], result["throughput_records_per_s"]
    lines = [
        f"{'measure':<44}{'ephemeral':>14}{'persistent':>14}{'ratio':>10}",
        f"{'remember p50 (ms)':<44}{lat['ephemeral']['p50_ms']:>14.1f}{lat['persistent']['p50_ms']:>14.2f}"
        f"{lat['ephemeral_over_persistent_p50']:>9.0f}x",
        f"{'filtered recall p50 (ms), ' + str(result['filtered_recall_persistent']['memories']) + ' memories':<44}"
        f"{'':>14}{result['filtered_recall_persistent']['p50_ms']:>14.2f}",
        f"{'empty tool p50 (ms), the SDK floor':<44}{'':>14}{result['sdk_floor_empty_tool']['p50_ms']:>14.2f}",
        f"{'  CPU per empty call, client + server (ms)':<44}{'':>14}"
        f"{result['sdk_floor_empty_tool']['client_cpu_ms'] + result['sdk_floor_empty_tool']['server_cpu_ms']:>14.2f}",
        f"{'  CPU per recall, client + server (ms)':<44}{'':>14}"
        f"{result['filtered_recall_persistent']['client_cpu_ms'] + result['filtered_recall_persistent']['server_cpu_ms']:>14.2f}",
        f"{'remember p95 (ms)':<44}{lat['ephemeral']['p95_ms']:>14.1f}{lat['persistent']['p95_ms']:>14.2f}"
        f"{lat['ephemeral']['p95_ms'] / lat['persistent']['p95_ms']:>9.0f}x",
        f"{str(run['persistent']['problems']) + '-problem run, cortex time (s)':<44}"
        f"{run['ephemeral']['cortex_seconds']:>14.2f}{run['persistent']['cortex_seconds']:>14.3f}"
        f"{run['ephemeral_over_persistent']:>9.0f}x",
        "",
        f"{'writes (persistent session)':<44}{'records/s':>14}{'vs single':>14}",
    ]
    for name in ("single", "single_64_tasks", "batched", "write_buffer"):
        label = name if name not in ("batched", "write_buffer") else f"{name} (size {thr['batch_size']})"
        lines.append(f"{label:<44}{thr[name]:>14.0f}{thr[name] / thr['single']:>13.1f}x")
    lines.append("")
    lines += [f"goal {name}: {'met' if ok else 'MISSED'}" for name, ok in result["goals"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--persistent-ops", type=int, default=1000)
    parser.add_argument("--ephemeral-ops", type=int, default=10)
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--memories", type=int, default=2000, help="stored before the filtered recalls")
    parser.add_argument("--recalls", type=int, default=500)
    parser.add_argument("--out", type=Path, default=RESULTS)
    options = parser.parse_args()
    load_before = os.getloadavg()
    outcome = asyncio.run(main(options))
    outcome["arguments"] = {key: str(value) for key, value in vars(options).items()}
    outcome["load_average_before_after"] = [load_before, os.getloadavg()]
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(outcome, indent=2) + "\n")
    print(render(outcome))
    print(f"\nwrote {options.out}")
