"""A correct program beside each attack on the judge: its wall time as a ratio of its solo time,
and koderz's own peak memory while the attack is judged.

For every judge attack of ``tests/sandbox/test_adversarial.py`` (false passes, hash-collision
stalls, huge ints, endless lines, ...) the canonical HumanEval+ solution of ``--task``
(default HumanEval/36, about 2 s of CPU time) runs alone and beside the attack (two
sandbox slots), ``--rounds`` times each, alternating; the table shows median wall times,
the ratio, the attack's verdict, and the peak RSS of koderz's process itself (sampled
every 10 ms: the process the event loop runs in) and of the judge server's process tree.
Writes ``benchmarks/results/judge_isolation.json``.

    python benchmarks/judge_isolation.py [--rounds N] [--task ID] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import process_tree as _tree  # noqa: E402

from koderz.datasets.loaders import load_dataset  # noqa: E402
from koderz.sandbox.sandbox import Sandbox, SandboxConfig  # noqa: E402
from tests.sandbox.test_adversarial import _judge_attacks  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "judge_isolation.json"


class PeakRss:
    """Peak RSS of this process, and of the judge server's tree, sampled every 10 ms."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.own = self.judges = 0

    def __enter__(self) -> PeakRss:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            with open("/proc/self/statm") as handle:
                self.own = max(self.own, int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
            judges = self.sandbox._judges
            if judges is not None and judges._popen is not None:
                self.judges = max(self.judges, _tree(judges._popen.pid)[0])
            self._stop.wait(0.01)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _timed(sandbox: Sandbox, problem, program) -> tuple[float, object]:
    started = time.perf_counter()
    verdict = await sandbox.evaluate(problem, program)
    return time.perf_counter() - started, verdict


async def measure(rounds: int, task: str, only: list[str]) -> dict:
    datasets = {
        name: {p.task_id: p for p in load_dataset(name)} for name in ("humaneval", "humaneval_plus", "mbpp_plus")
    }
    attacks = _judge_attacks(datasets["humaneval"], datasets["humaneval_plus"], datasets["mbpp_plus"])
    neighbour = datasets["humaneval_plus"][task]
    sandbox = Sandbox(SandboxConfig(max_processes=2))
    rows = {}
    try:
        await sandbox.evaluate(neighbour, neighbour.reference_program)  # warm: zygotes up, problem registered
        for name, (problem, program, status, _) in attacks.items():
            if only and name not in only:
                continue
            solo, beside, verdicts = [], [], []
            with PeakRss(sandbox) as peak:
                for _ in range(rounds):
                    seconds, verdict = await _timed(sandbox, neighbour, neighbour.reference_program)
                    assert verdict.passed, verdict.feedback()
                    solo.append(seconds)
                    (seconds, verdict), (_, attack) = await asyncio.gather(
                        _timed(sandbox, neighbour, neighbour.reference_program), _timed(sandbox, problem, program)
                    )
                    assert verdict.passed, verdict.feedback()
                    beside.append(seconds)
                    verdicts.append(attack.status)
            rows[name] = {
                "solo_s": round(statistics.median(solo), 3),
                "beside_s": round(statistics.median(beside), 3),
                "ratio": round(statistics.median(beside) / statistics.median(solo), 3),
                "attack_status": sorted(set(verdicts)),
                "expected_status": status,
                "koderz_peak_rss_mb": round(peak.own / 2**20, 1),
                "judge_server_peak_rss_mb": round(peak.judges / 2**20, 1),
            }
            print(
                f"{name:30} {rows[name]['solo_s']:7.2f} {rows[name]['beside_s']:7.2f} {rows[name]['ratio']:6.2f}"
                f" {','.join(rows[name]['attack_status']):8} {rows[name]['koderz_peak_rss_mb']:8.1f}"
                f" {rows[name]['judge_server_peak_rss_mb']:8.1f}",
                flush=True,
            )
    finally:
        sandbox.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--task", default="HumanEval/36")
    parser.add_argument("--only", nargs="*", default=[])
    args = parser.parse_args()
    print(f"{'attack':30} {'solo s':>7} {'beside':>7} {'ratio':>6} {'verdict':8} {'koderz MB':>8} {'judges MB':>8}")
    rows = asyncio.run(measure(args.rounds, args.task, args.only))
    report = {
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "neighbour": args.task,
        "rounds": args.rounds,
        "attacks": rows,
        "worst_ratio": max(r["ratio"] for r in rows.values()),
        "worst_koderz_peak_rss_mb": max(r["koderz_peak_rss_mb"] for r in rows.values()),
    }
    print(f"worst ratio {report['worst_ratio']:.2f}; koderz's peak RSS {report['worst_koderz_peak_rss_mb']:.0f} MB")
    if not args.only:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
