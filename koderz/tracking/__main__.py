"""``python -m koderz.tracking log RUN_FOLDER``: log a run folder to MLflow, or finish logging it.

``follow`` is the live worker a run starts itself (``koderz.tracking.follow``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from koderz.arguments import OneLineParser
from koderz.errors import KoderzError


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the command; return the exit code."""
    parser = OneLineParser(prog="python -m koderz.tracking")
    commands = parser.add_subparsers(dest="command", required=True)
    log_cmd = commands.add_parser("log", help="log a run folder as one MLflow run, or finish logging it")
    log_cmd.add_argument("run_folder", type=Path)
    log_cmd.add_argument("--uri", help="tracking URI (default: the store the folder logs to, else its tracking.uri)")
    log_cmd.add_argument("--experiment", help="experiment name (default: the folder's)")
    log_cmd.add_argument("--parent-run-id", help="nest the run under this MLflow run")
    commands.add_parser(
        "follow", help="(started by a run) log the run while it runs; its settings are the first line on stdin"
    )
    args = parser.parse_args(argv)
    if args.command == "follow":  # its output is the run folder's tracking.log: a timeline
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return _follow(args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return _log(args)


def _follow(args: argparse.Namespace) -> int:
    from koderz.tracking.follow import Signals, warm_up, work

    signals = Signals()
    warm_up()  # mlflow's imports, while the run that started us is still starting
    # Every write is committed; MLflow's exit handlers (trace export queues, telemetry) would
    # only keep the run waiting for seconds.
    os._exit(work(signals))


def _log(args: argparse.Namespace) -> int:
    from koderz.config import TrackingConfig, typed
    from koderz.records import RunFolder
    from koderz.tracking.logger import log_folder
    from koderz.tracking.mlflow_tracker import one_line, tracking_uri

    try:
        folder = RunFolder.existing(args.run_folder)
        tracking = typed(TrackingConfig, folder.read_config().get("tracking") or {})
        progress = folder.read_tracking()
        tracking.uri = args.uri or (progress.uri if progress else None) or tracking.uri
        tracking.experiment = args.experiment or tracking.experiment
    except KoderzError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        run_id = log_folder(folder.path, tracking, parent_run_id=args.parent_run_id)
    except Exception as err:  # noqa: BLE001 - one line, not a traceback
        uri = tracking_uri(tracking)
        print(f"error: MLflow logging to {uri} failed: {one_line(err)}", file=sys.stderr)
        return 1
    print(run_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
