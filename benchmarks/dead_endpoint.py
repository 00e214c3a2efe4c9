"""What a dead server costs a run: N problems' calls against a server that crashes on every
request, with the circuit breaker off (today's retries only) and on.

The scripted server (in this process) records every request, then drops its connection, so
the attempts it saw are counted exactly; a killed server (connections refused) is timed too.
Calls run with the runner's bounded concurrency and the default retries (3, backoff 0.5 s).
Prints a table and writes benchmarks/results/dead_endpoint.json.

    python benchmarks/dead_endpoint.py [--calls 32] [--concurrency 4] [--breaker-wait 5]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, write_json  # noqa: E402
from koderz.datasets.problem import Problem  # noqa: E402
from koderz.errors import ModelError  # noqa: E402
from koderz.models.base import CallContext  # noqa: E402
from koderz.models.config import ModelConfig  # noqa: E402
from koderz.models.registry import ClientPool, build_model  # noqa: E402
from koderz.vocab import Phase  # noqa: E402
from tests.support.fakes.scripted_server import ScriptedServer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "dead_endpoint.json"
KEY_ENV = "KODERZ_BENCH_KEY"
CONTEXT = CallContext(Problem("Bench/0", "def add(a, b):\n", "add", "    return a + b\n", "", "bench"), Phase.GENERATE)
MESSAGES = [{"role": "user", "content": "Complete the function add(a, b)."}]
NEVER = 10**9  # breaker_failures that never trips: the breaker is off


async def scenario(failure: str, breaker: bool, calls: int, concurrency: int, wait: float) -> dict[str, Any]:
    server = await ScriptedServer(lambda body, route, i: "unreachable").start()
    if failure == "dropping":
        server.dropping = True
    else:
        await server.kill()
    cfg = ModelConfig(
        provider="openai",
        name="bench-model",
        base_url=server.openai_url,
        api_key_env=KEY_ENV,
        timeout=30.0,
        breaker_failures=3 if breaker else NEVER,
        breaker_wait=wait,
    )
    pool = ClientPool()
    model = build_model(cfg, pool)
    gate = asyncio.Semaphore(concurrency)  # the runner's problem concurrency
    kinds: collections.Counter[str] = collections.Counter()

    async def one() -> None:
        async with gate:
            try:
                await model.complete(MESSAGES, CONTEXT)
                kinds["answered"] += 1
            except ModelError as exc:
                kinds[exc.kind.value] += 1

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(calls)))
    wall = time.perf_counter() - start
    await pool.aclose()
    await server.stop()
    counted = failure == "dropping"
    return {
        "failure": failure,
        "breaker": "on" if breaker else "off",
        "calls": calls,
        "wall_s": round(wall, 3),
        "chat_attempts": server.hits("openai.chat") if counted else None,
        "probes": server.hits("openai.models") if counted else None,
        "errors": dict(kinds),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--breaker-wait", type=float, default=5.0, help="model.breaker_wait (s) when on")
    args = parser.parse_args()
    os.environ.setdefault(KEY_ENV, "sk-bench")
    rows = []
    for failure in ("dropping", "killed"):
        for breaker in (False, True):
            rows.append(await scenario(failure, breaker, args.calls, args.concurrency, args.breaker_wait))
    header = f"{'server':<9} {'breaker':<8} {'calls':>5} {'wall s':>8} {'attempts':>9} {'probes':>7}  errors"
    print(header)
    print("-" * len(header))
    for row in rows:
        attempts = "-" if row["chat_attempts"] is None else row["chat_attempts"]
        probes = "-" if row["probes"] is None else row["probes"]
        print(
            f"{row['failure']:<9} {row['breaker']:<8} {row['calls']:>5} {row['wall_s']:>8.2f} {attempts:>9} "
            f"{probes:>7}  {row['errors']}"
        )
    ratios = {
        failure: round(by["off"]["wall_s"] / by["on"]["wall_s"], 2)
        for failure in ("dropping", "killed")
        if (by := {r["breaker"]: r for r in rows if r["failure"] == failure})
    }
    print(f"wall time, breaker off / on: {ratios}")
    write_json(
        RESULTS,
        {
            "machine": machine(),
            "settings": {
                "calls": args.calls,
                "concurrency": args.concurrency,
                "breaker_failures": 3,
                "breaker_wait": args.breaker_wait,
                "max_retries": ModelConfig.max_retries,
                "retry_backoff": ModelConfig.retry_backoff,
            },
            "rows": rows,
            "wall_ratio_off_over_on": ratios,
        },
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
