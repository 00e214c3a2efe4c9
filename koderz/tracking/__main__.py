"""``python -m koderz.tracking log RUN_FOLDER``: log a finished run folder to MLflow."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from koderz.errors import KoderzError


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, log the folder, print the MLflow run id; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m koderz.tracking")
    commands = parser.add_subparsers(dest="command", required=True)
    log_cmd = commands.add_parser("log", help="log a finished run folder as one MLflow run")
    log_cmd.add_argument("run_folder", type=Path)
    log_cmd.add_argument("--uri", help="tracking URI (default: the folder's tracking.uri)")
    log_cmd.add_argument("--experiment", help="experiment name (default: the folder's)")
    log_cmd.add_argument("--parent-run-id", help="nest the run under this MLflow run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from omegaconf import OmegaConf

    from koderz.config import TrackingConfig
    from koderz.records import RunFolder
    from koderz.tracking.mlflow_tracker import tracking_uri, upload_run_folder

    try:
        folder = RunFolder.existing(args.run_folder)
        saved = OmegaConf.merge(OmegaConf.structured(TrackingConfig), folder.read_config().get("tracking") or {})
        tracking = OmegaConf.to_object(saved)
        assert isinstance(tracking, TrackingConfig)
        tracking.uri = args.uri or tracking.uri
        tracking.experiment = args.experiment or tracking.experiment
        folder.read_results()
    except KoderzError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        run_id = upload_run_folder(folder, tracking, parent_run_id=args.parent_run_id)
    except Exception as err:  # noqa: BLE001 - one line, not a traceback
        first = (str(err).strip().splitlines() or [""])[0][:300]
        uri = tracking_uri(tracking)
        print(f"error: MLflow logging to {uri} failed: {type(err).__name__}: {first}", file=sys.stderr)
        return 1
    print(run_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
