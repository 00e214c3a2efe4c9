"""``python -m koderz.export evalplus RUN_FOLDER [--out FILE] [--mode MODE]``: a run's samples as
EvalPlus's ``eval_results.json`` (default: in the run folder), with base and base+plus pass@k."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from koderz.errors import ConfigError, KoderzError
from koderz.export.evalplus import eval_results
from koderz.records import RunFolder
from koderz.vocab import Mode

log = logging.getLogger("koderz.export")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, write the file, print its path and pass@k; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m koderz.export")
    formats = parser.add_subparsers(dest="format", required=True)
    evalplus = formats.add_parser("evalplus", help="EvalPlus's eval_results.json (base and plus statuses, pass@k)")
    evalplus.add_argument("run_folder", type=Path)
    evalplus.add_argument("--out", type=Path, help="the file to write (default: RUN_FOLDER/eval_results.json)")
    evalplus.add_argument(
        "--mode",
        choices=[Mode.ZERO_SHOT.value, Mode.ITERATIVE.value],
        help="a comparative run's part (default: its headline)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        folder = RunFolder.existing(args.run_folder)
        mode = Mode(args.mode) if args.mode else folder_headline(folder)
        export = eval_results(folder, mode)
    except KoderzError as err:
        print(f"koderz.export: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a run file that cannot be read
        print(f"koderz.export: error: {err.filename}: cannot read ({err.strerror or err})", file=sys.stderr)
        return 2
    text = json.dumps(export.results)
    target = args.out or folder.path / folder.eval_results_name(mode)
    try:
        path = write_atomically(args.out, text) if args.out else folder.write_eval_results(mode, text)
    except OSError as err:
        print(f"koderz.export: error: {target}: cannot write ({err.strerror or err})", file=sys.stderr)
        return 2
    if export.unanswered:
        log.warning(
            "left out %d problems without a verdict (no sample to export), e.g. %s",
            len(export.unanswered),
            export.unanswered[0],
        )
    print(path)
    for name, title in (
        ("base", f"{export.dataset} (base tests)"),
        ("plus", f"{export.dataset}+ (base + extra tests)"),
    ):
        figures = ", ".join(f"{k} {v:.3f}" for k, v in export.results["pass_at_k"][name].items())
        print(f"{title}: {figures}")
    return 0


def folder_headline(folder: RunFolder) -> Mode:
    """The part the run's pass rate is about (the iterative part of a comparative run)."""
    mode = folder.read_mode()
    if mode.spec.headline is None:
        raise ConfigError(f"{folder.path}: a {mode.value} run has no samples")
    return mode.spec.headline


def write_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file beside it (a reader never sees half)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path


if __name__ == "__main__":
    sys.exit(main())
