"""``python -m koderz.export evalplus RUN_FOLDER [--out FILE] [--samples FILE] [--mode MODE]``: a
run's samples as EvalPlus's ``eval_results.json`` (koderz's verdicts, base and base+plus pass@k) and
as a samples file for ``evalplus.evaluate --samples`` (default: both in the run folder).
``python -m koderz.export bigcodebench|livecodebench RUN_FOLDER [--out FILE] [--mode MODE]``: the
run's programs in that benchmark's samples format (``koderz.export.bench_samples``)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from koderz.arguments import OneLineParser
from koderz.errors import ConfigError, KoderzError
from koderz.export.bench_samples import FILE_NAMES, run_samples
from koderz.export.evalplus import eval_results, evalplus_samples, samples_name
from koderz.records import RunFolder
from koderz.vocab import Mode

log = logging.getLogger("koderz.export")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, write the file, print its path and pass@k; return the exit code."""
    parser = OneLineParser(prog="python -m koderz.export")
    formats = parser.add_subparsers(dest="format", required=True)
    evalplus = formats.add_parser("evalplus", help="EvalPlus's eval_results.json (base and plus statuses, pass@k)")
    evalplus.add_argument("run_folder", type=Path)
    evalplus.add_argument("--out", type=Path, help="the file to write (default: RUN_FOLDER/eval_results.json)")
    evalplus.add_argument(
        "--samples",
        type=Path,
        help="the samples file for evalplus.evaluate, a .jsonl (default: RUN_FOLDER/evalplus_samples.jsonl)",
    )
    evalplus.add_argument(
        "--mode",
        choices=[Mode.ZERO_SHOT.value, Mode.ITERATIVE.value],
        help="a comparative run's part (default: its headline)",
    )
    for benchmark in FILE_NAMES:
        bench = formats.add_parser(benchmark, help=f"the run's programs in {benchmark}'s samples format")
        bench.add_argument("run_folder", type=Path)
        bench.add_argument("--out", type=Path, help=f"the file to write (default: RUN_FOLDER/{FILE_NAMES[benchmark]})")
        bench.add_argument("--mode", choices=[Mode.ZERO_SHOT.value, Mode.ITERATIVE.value])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        folder = RunFolder.existing(args.run_folder)
        mode = Mode(args.mode) if args.mode else folder_headline(folder)
        if args.format in FILE_NAMES:
            name, text = run_samples(folder, mode, args.format)
            path = args.out or folder.path / name
            files = {path: text}
        else:
            export = eval_results(folder, mode)
            samples = evalplus_samples(folder, mode, export)
            if args.samples is not None and not args.samples.name.endswith(".jsonl"):
                raise ConfigError(f"--samples={args.samples}: evalplus.evaluate takes a samples file ending in .jsonl")
            path = args.out or folder.path / folder.eval_results_name(mode)
            samples_path = args.samples or folder.path / samples_name(folder, mode)
            lines = "".join(json.dumps(x) + "\n" for x in samples.lines)
            files = {path: json.dumps(export.results), samples_path: lines}
    except KoderzError as err:
        print(f"koderz.export: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a run file that cannot be read
        print(f"koderz.export: error: {err.filename}: cannot read ({err.strerror or err})", file=sys.stderr)
        return 2
    failed = write_all(files)
    if failed is not None:
        print(f"koderz.export: error: {failed}", file=sys.stderr)
        return 2
    print(path)
    if args.format in FILE_NAMES:
        return 0
    if export.unanswered:
        log.warning(
            "left out %d problems without a verdict (no sample to export), e.g. %s",
            len(export.unanswered),
            export.unanswered[0],
        )
    for name, title in (
        ("base", f"{export.dataset} (base tests)"),
        ("plus", f"{export.dataset}+ (base + extra tests)"),
    ):
        figures = ", ".join(f"{k} {v:.3f}" for k, v in export.results["pass_at_k"][name].items())
        print(f"{title}: {figures}")
    print(samples_path)
    empty = f"; {len(samples.empty)} tasks without a sample have empty solutions (failed)" if samples.empty else ""
    figures = ", ".join(f"{name} {k} {v:.3f}" for name in ("base", "plus") for k, v in samples.pass_at_k[name].items())
    print(f"evalplus.evaluate --dataset {export.dataset} --samples {samples_path} will print: {figures}{empty}")
    return 0


def folder_headline(folder: RunFolder) -> Mode:
    """The part the run's pass rate is about (the iterative part of a comparative run)."""
    mode = folder.read_mode()
    if mode.spec.headline is None:
        raise ConfigError(f"{folder.path}: a {mode.value} run has no samples")
    return mode.spec.headline


def write_all(files: dict[Path, str]) -> str | None:
    """Write every file or none (each through a temporary file beside it, renamed once all are
    written: a reader never sees half a file); the error, or None."""
    partials = {path: path.with_name(f".{path.name}.{os.getpid()}.tmp") for path in files}
    try:
        for path, partial in partials.items():
            try:
                partial.write_text(files[path], encoding="utf-8")
            except OSError as err:
                return f"{path}: cannot write ({err.strerror or err})"
        for path, partial in partials.items():
            partial.replace(path)
        return None
    finally:
        for partial in partials.values():
            partial.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
