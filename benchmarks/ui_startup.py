"""How long ``mlflow ui`` takes to answer, with its defaults and started lean, on one store.

    python benchmarks/ui_startup.py [--repeats 1] [--store sqlite:///outputs/mlflow.db]

Without ``--store`` a store is made first (untimed): a real 20-problem run logged by koderz.
Then, alternating, ``mlflow ui`` starts on a free 127.0.0.1 port with its defaults and with
``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false --workers 1``; the figure is the time until
``GET /health`` answers (median of ``--repeats``). Each server is stopped (its whole process
group) before the next starts. Prints a table and writes ``benchmarks/results/ui_startup.json``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import PYTHON, ROOT, machine, product_state, write_json

RESULTS = ROOT / "benchmarks" / "results" / "ui_startup.json"
MODES = {
    "defaults": ({}, []),
    "lean": ({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, ["--workers", "1"]),
}
DEADLINE = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def time_to_health(store: str, extra_env: dict[str, str], extra_args: list[str], cwd: Path) -> float:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | extra_env
    command = [str(Path(PYTHON).with_name("mlflow")), "ui", "--backend-store-uri", store, "--port", str(port)]
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*command, *extra_args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
                return time.perf_counter() - start
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"mlflow ui exited with {proc.returncode}") from None
                if time.perf_counter() - start > DEADLINE:
                    raise RuntimeError(f"mlflow ui did not answer within {DEADLINE:.0f} s") from None
                time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def make_store(cwd: Path) -> str:
    """A store holding one real run (20 problems, traces), logged by koderz itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | {"PYTHONPATH": str(ROOT)}
    subprocess.run([PYTHON, "-m", "koderz", "end=20", "cortex=off"], cwd=cwd, env=env, capture_output=True, check=True)
    return f"sqlite:///{cwd / 'outputs' / 'mlflow.db'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--store", help="an existing store's URI (default: make one)")
    args = parser.parse_args()
    result: dict[str, Any] = {"machine_before": machine(), "product": product_state()}
    with tempfile.TemporaryDirectory(prefix="koderz-ui-") as tmp:
        cwd = Path(tmp)
        store = args.store or make_store(cwd)
        seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
        for _ in range(args.repeats):
            for mode, (env, extra) in MODES.items():
                seconds[mode].append(time_to_health(store, env, extra, cwd))
    result["seconds"] = seconds
    result["median_s"] = {mode: statistics.median(values) for mode, values in seconds.items()}
    result["ratio_lean_to_defaults"] = result["median_s"]["lean"] / result["median_s"]["defaults"]
    result["machine_after"] = machine()
    print(f"{'mode':<10} {'ready s':>8}")
    for mode, value in result["median_s"].items():
        print(f"{mode:<10} {value:>8.1f}")
    print(f"lean / defaults: {result['ratio_lean_to_defaults']:.2f}")
    write_json(RESULTS, result)
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
