"""Pooled SDK client vs a new client per call, against the scripted server.

The server runs in its own process (the CLI form of tests/support/fakes/scripted_server.py) so
it does not share this process's event loop. For each provider and injected latency,
N calls run with bounded concurrency, once through one pooled client (what koderz does:
``ClientPool`` shared by the run) and once creating and closing a client per call.
Prints a table and writes benchmarks/results/http_pooling.json.

    python benchmarks/http_pooling.py [--calls 400] [--concurrency 16]
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
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from koderz.datasets.problem import Problem  # noqa: E402
from koderz.models.base import CallContext  # noqa: E402
from koderz.models.config import ModelConfig  # noqa: E402
from koderz.models.registry import ClientPool, build_model  # noqa: E402
from koderz.vocab import Phase  # noqa: E402

SERVER = ROOT / "tests" / "support" / "fakes" / "scripted_server.py"
RESULTS = ROOT / "benchmarks" / "results" / "http_pooling.json"
KEY_ENV = "KODERZ_BENCH_KEY"
ANSWER = "Here is my solution.\n\n```python\ndef add(a, b):\n    return a + b\n```\n"
CONTEXT = CallContext(Problem("Bench/0", "def add(a, b):\n", "add", "    return a + b\n", "", "bench"), Phase.GENERATE)
MESSAGES = [{"role": "user", "content": "Complete the function add(a, b)."}]


async def start_server(latency: float) -> tuple[asyncio.subprocess.Process, str]:
    script = Path(tempfile.mkdtemp()) / "script.json"
    script.write_text(json.dumps({"latency": latency, "default": ANSWER}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(SERVER), "--port", "0", "--script", str(script), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    url = (await proc.stdout.readline()).decode().strip()
    return proc, url


def server_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_stats") as response:  # once per scenario, outside the timed part
        return json.loads(response.read())


def config(provider: str, url: str) -> ModelConfig:
    return ModelConfig(
        provider=provider, name="bench-model", base_url=f"{url}/v1", host=url, api_key_env=KEY_ENV, timeout=30.0
    )


async def run_mode(mode: str, cfg: ModelConfig, calls: int, concurrency: int) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    shared = ClientPool()
    pooled_model = build_model(cfg, shared)

    async def one() -> None:
        async with gate:
            start = time.perf_counter()
            if mode == "pooled":
                await pooled_model.complete(MESSAGES, CONTEXT)
            else:
                pool = ClientPool()
                try:
                    await build_model(cfg, pool).complete(MESSAGES, CONTEXT)
                finally:
                    await pool.aclose()
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(calls)))
    wall = time.perf_counter() - start
    await shared.aclose()
    latencies.sort()
    return {
        "wall_s": wall,
        "calls_per_s": calls / wall,
        "mean_ms": 1000 * statistics.fmean(latencies),
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p95_ms": 1000 * latencies[int(len(latencies) * 0.95) - 1],
    }


async def scenario(provider: str, latency: float, calls: int, concurrency: int) -> dict[str, Any]:
    proc, url = await start_server(latency)
    try:
        cfg = config(provider, url)
        await run_mode("pooled", cfg, min(concurrency, calls), concurrency)  # warm-up: imports, server
        out: dict[str, Any] = {"provider": provider, "latency_s": latency, "calls": calls, "concurrency": concurrency}
        for mode in ("pooled", "fresh"):
            before = server_stats(url)
            out[mode] = await run_mode(mode, cfg, calls, concurrency)
            after = server_stats(url)
            out[mode]["connections"] = after["connections"] - before["connections"]
        out["throughput_ratio"] = out["pooled"]["calls_per_s"] / out["fresh"]["calls_per_s"]
        out["mean_latency_ratio"] = out["fresh"]["mean_ms"] / out["pooled"]["mean_ms"]
        return out
    finally:
        proc.terminate()
        await proc.wait()


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'provider':<8} {'lat s':>5} {'calls':>5} | {'pooled c/s':>10} {'mean ms':>8} {'conns':>5} |"
        f" {'fresh c/s':>9} {'mean ms':>8} {'conns':>5} | {'thru x':>6} {'lat x':>6}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        p, f = r["pooled"], r["fresh"]
        lines.append(
            f"{r['provider']:<8} {r['latency_s']:>5.2f} {r['calls']:>5} |"
            f" {p['calls_per_s']:>10.1f} {p['mean_ms']:>8.1f}"
            f" {p['connections']:>5} | {f['calls_per_s']:>9.1f} {f['mean_ms']:>8.1f} {f['connections']:>5} |"
            f" {r['throughput_ratio']:>6.2f} {r['mean_latency_ratio']:>6.2f}"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description="pooled vs per-call SDK clients")
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--slow-calls", type=int, default=160, help="calls for the 0.3 s latency runs")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    os.environ.setdefault(KEY_ENV, "sk-bench")
    rows = []
    for provider in ("openai", "ollama"):
        rows.append(await scenario(provider, 0.0, args.calls, args.concurrency))
        rows.append(await scenario(provider, 0.3, args.slow_calls, args.concurrency))
    print(table(rows))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"cpus": os.cpu_count(), "python": sys.version.split()[0], "rows": rows}, indent=2))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
