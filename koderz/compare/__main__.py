"""``python -m koderz.compare RUN_A RUN_B`` and ``python -m koderz.compare SWEEP_DIR [--baseline JOB]``.

Two run folders: B against A. A sweep's folder: every job against the baseline job (its number
or folder name; the first job by default), and the figures logged on the sweep's MLflow parent
run when it has one (``--no-mlflow`` to skip). ``--json`` prints one JSON object (a sweep: the
baseline and a list of comparisons). Bad input is one line and exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from koderz.arguments import OneLineParser
from koderz.compare.pairing import PairedComparison, Run, compare
from koderz.errors import ConfigError, ExitCode, KoderzError
from koderz.records import RunFolder
from koderz.vocab import Mode

SHOWN_TASKS = 20


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m koderz.compare", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="RUN_A RUN_B, or one sweep folder")
    parser.add_argument("--baseline", help="a sweep's baseline job: its number or folder name (default: the first)")
    parser.add_argument(
        "--mode",
        choices=[Mode.ZERO_SHOT.value, Mode.ITERATIVE.value],
        help="the part of comparative runs to compare (default: each run's headline)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--no-mlflow", action="store_true", help="a sweep: do not log to its MLflow parent run")
    args = parser.parse_args(argv)
    mode = Mode(args.mode) if args.mode else None
    try:
        if len(args.runs) == 2:
            if args.baseline:
                raise ConfigError("--baseline: only with one sweep folder")
            result = compare(Run.read(args.runs[0], mode), Run.read(args.runs[1], mode))
            print(result.model_dump_json(indent=2) if args.json else format_comparison(result))
            return ExitCode.OK
        if len(args.runs) != 1:
            raise ConfigError(f"expected RUN_A RUN_B or one sweep folder, got {len(args.runs)} paths")
        baseline, jobs = sweep_jobs(args.runs[0], args.baseline)
        base = Run.read(baseline, mode)
        results = [compare(base, Run.read(job, mode)) for job in jobs]
    except KoderzError as err:
        print(f"koderz.compare: error: {err}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    if args.json:
        print(json.dumps({"baseline": str(baseline), "comparisons": [r.model_dump(mode="json") for r in results]}))
    else:
        print("\n\n".join(format_comparison(r) for r in results))
    if not args.no_mlflow:
        from koderz.compare.tracking import log_sweep_comparisons

        log_sweep_comparisons(args.runs[0], results)
    return ExitCode.OK


def sweep_jobs(sweep: Path, baseline: str | None) -> tuple[Path, list[Path]]:
    """The baseline job's folder and the other jobs' folders of a sweep, in job order."""
    if RunFolder(sweep).is_run_folder():
        raise ConfigError(f"{sweep}: a run folder; compare two runs with RUN_A RUN_B, or give a sweep folder")
    jobs = sorted(
        (p for p in sweep.iterdir() if p.is_dir() and RunFolder(p).is_run_folder()) if sweep.is_dir() else [],
        key=_job_order,
    )
    if len(jobs) < 2:
        raise ConfigError(f"{sweep}: not a sweep folder with two or more run folders")
    if baseline is None:
        chosen = jobs[0]
    else:
        matches = [p for p in jobs if p.name == baseline or p.name.split("_", 1)[0] == baseline]
        if not matches:
            names = ", ".join(p.name for p in jobs)
            raise ConfigError(f"--baseline={baseline}: no such job in {sweep} (jobs: {names})")
        chosen = matches[0]
    return chosen, [p for p in jobs if p != chosen]


def _job_order(path: Path) -> tuple[int, str]:
    number = path.name.split("_", 1)[0]
    return (int(number) if number.isdigit() else sys.maxsize, path.name)


def format_comparison(result: PairedComparison) -> str:
    """The comparison as a reader takes it in: both rates, the difference, the test, the flips."""
    a, b = result.a, result.b
    lines = [
        f"A  {a.model} ({a.mode.value})  {a.folder}",
        f"   pass@1 {a.pass_rate:.3f} (95% CI {a.ci.low:.3f}-{a.ci.high:.3f}, {a.ci.method})",
        f"B  {b.model} ({b.mode.value})  {b.folder}",
        f"   pass@1 {b.pass_rate:.3f} (95% CI {b.ci.low:.3f}-{b.ci.high:.3f}, {b.ci.method})",
        f"{result.tasks} paired tasks on {result.dataset} (protocol {result.protocol})"
        + (f"; {len(result.excluded)} left out: no verdict in one run" if result.excluded else ""),
        f"B - A  {result.difference:+.3f} (95% CI {result.ci_low:+.3f} to {result.ci_high:+.3f}, {result.ci_method})",
        f"McNemar exact p = {result.mcnemar_p:.4g}  (A only {result.a_only}, B only {result.b_only}, "
        f"both {result.both}, neither {result.neither})",
    ]
    for row in result.pass_at_k:
        lines.append(
            f"{row.k}  A {row.a:.3f}  B {row.b:.3f}  B - A {row.difference:+.3f} "
            f"(95% CI {row.ci_low:+.3f} to {row.ci_high:+.3f}, paired bootstrap)"
        )
    for label, tasks in (("passed in A only", result.a_only_tasks), ("passed in B only", result.b_only_tasks)):
        if tasks:
            more = f" and {len(tasks) - SHOWN_TASKS} more" if len(tasks) > SHOWN_TASKS else ""
            lines.append(f"{label}: {', '.join(tasks[:SHOWN_TASKS])}{more}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
