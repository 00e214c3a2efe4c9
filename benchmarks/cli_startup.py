"""How long the command line takes to say something: a rejected input, ``--help``, a one-task run.

Each command runs ``--repeats`` times as a fresh process in an empty temp dir, the commands
interleaved round by round (so a change in the machine's load hits all of them alike);
the table gives the median and the minimum, and each median as a ratio to the bare
interpreter's start-up (``python -c pass``) and to ``import hydra`` measured in the same run.
``--baseline DIR`` also times the same commands with another koderz checkout first on
``PYTHONPATH`` (e.g. the main branch) and adds the ratio this/baseline.

    python benchmarks/cli_startup.py                      # ~1 min on 2 CPUs
    python benchmarks/cli_startup.py --baseline ../main   # the same against another checkout
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import PYTHON, ROOT, machine, product_state, write_json

QUIET = ["tracking=off", "cortex=off"]
COMMANDS: list[tuple[str, list[str], bool]] = [  # name, argv after the interpreter, a koderz command
    ("interpreter: python -c pass", ["-c", "pass"], False),
    ("import hydra", ["-c", "import hydra"], False),
    ("import koderz.__main__", ["-c", "import koderz.__main__"], True),
    ("unknown key: foo=1 (Hydra's composition)", ["-m", "koderz", "foo=1", *QUIET], True),
    ("end=99999 (composed, checked, rejected)", ["-m", "koderz", "end=99999", *QUIET], True),
    ("--help", ["-m", "koderz", "--help"], True),
    ("one task: end=1 (reference model)", ["-m", "koderz", "end=1", *QUIET], True),
]


def time_once(argv: list[str], pythonpath: str | None) -> tuple[float, int]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HYDRA_FULL_ERROR")}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    with tempfile.TemporaryDirectory(prefix="koderz-cli-bench-") as cwd:
        start = time.perf_counter()
        done = subprocess.run([PYTHON, *argv], cwd=cwd, env=env, capture_output=True, timeout=600)
        return time.perf_counter() - start, done.returncode


def measure(repeats: int, baseline: Path | None) -> list[dict[str, Any]]:
    variants: list[tuple[str, str | None]] = [("this", str(ROOT))]
    if baseline is not None:
        variants.append(("baseline", str(baseline.resolve())))
    samples: dict[tuple[str, str], list[float]] = {}
    codes: dict[tuple[str, str], set[int]] = {}
    for _ in range(repeats):
        for name, argv, is_koderz in COMMANDS:
            for variant, path in variants if is_koderz else variants[:1]:
                seconds, code = time_once(argv, path)
                samples.setdefault((name, variant), []).append(seconds)
                codes.setdefault((name, variant), set()).add(code)
    rows: list[dict[str, Any]] = []
    for (name, variant), values in samples.items():
        rows.append(
            {
                "command": name,
                "variant": variant,
                "median_s": statistics.median(values),
                "min_s": min(values),
                "exit_codes": sorted(codes[(name, variant)]),
                "repeats": len(values),
            }
        )
    interpreter = next(r["median_s"] for r in rows if r["command"].startswith("interpreter"))
    hydra = next(r["median_s"] for r in rows if r["command"] == "import hydra")
    for row in rows:
        row["x_interpreter"] = row["median_s"] / interpreter
        row["x_import_hydra"] = row["median_s"] / hydra
        other = next((r for r in rows if r["command"] == row["command"] and r["variant"] == "baseline"), None)
        if row["variant"] == "this" and other is not None:
            row["x_baseline"] = row["median_s"] / other["median_s"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline", type=Path, help="another koderz checkout to compare with")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cli_startup.json")
    args = parser.parse_args()
    rows = measure(args.repeats, args.baseline)
    header = (
        f"{'command':44} {'variant':9} {'median s':>9} {'min s':>7} {'x python':>9} {'x hydra':>8} {'x base':>7} exit"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        base = f"{row['x_baseline']:.2f}" if "x_baseline" in row else "-"
        print(
            f"{row['command']:44} {row['variant']:9} {row['median_s']:9.3f} {row['min_s']:7.3f} "
            f"{row['x_interpreter']:9.2f} {row['x_import_hydra']:8.2f} {base:>7} {row['exit_codes']}"
        )
    write_json(
        args.out,
        {
            "benchmark": "cli_startup",
            "machine": machine(),
            "product": product_state(),
            "baseline": str(args.baseline) if args.baseline else None,
            "rows": rows,
        },
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
