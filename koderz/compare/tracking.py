"""A sweep's comparisons on its MLflow parent run: metrics per job and one table artifact.

Optional: a sweep without a parent run (tracking was off), or a store that cannot be reached,
logs nothing and says so in one line; the comparison printed stands on its own.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any

from koderz.compare.pairing import PairedComparison
from koderz.config import TrackingConfig, typed
from koderz.records import RunFolder

log = logging.getLogger(__name__)

TABLE = "comparisons.json"
PARENT_FILE = "mlflow_parent_run_id"  # written by koderz.tracking.callback at the sweep's start
FIGURES = ("difference", "ci_low", "ci_high", "mcnemar_p", "a_only", "b_only")  # of a PairedComparison


def comparison_metrics(results: list[PairedComparison]) -> dict[str, float]:
    """``compare/<job>/<figure>`` for every job compared with the baseline."""
    values: dict[str, float] = {}
    for result in results:
        job = re.sub(r"[^\w.\- /]", "_", Path(result.b.folder).name)[:150]
        values |= {f"compare/{job}/{name}": float(getattr(result, name)) for name in FIGURES}
    return values


def comparison_table(results: list[PairedComparison]) -> dict[str, list[Any]]:
    table: dict[str, list[Any]] = {
        "baseline": [r.a.folder for r in results],
        "job": [r.b.folder for r in results],
        "model": [r.b.model for r in results],
        "tasks": [r.tasks for r in results],
        "baseline_pass_rate": [r.a.pass_rate for r in results],
        "pass_rate": [r.b.pass_rate for r in results],
    }
    return table | {name: [getattr(r, name) for r in results] for name in FIGURES}


def log_sweep_comparisons(sweep: Path, results: list[PairedComparison]) -> str | None:
    """Log on the sweep's parent run; its id, or None (no parent run, tracking off, a failure)."""
    parent_file = sweep / PARENT_FILE
    if not results or not parent_file.is_file():
        return None
    parent = parent_file.read_text().strip()
    try:
        tracking = typed(TrackingConfig, RunFolder(Path(results[0].a.folder)).read_config().get("tracking") or {})
        if not parent or not tracking.enabled:
            return None
        from mlflow.entities import Metric

        from koderz.tracking import mlflow_tracker as mt

        with mt.store(tracking) as (_, client):
            stamp = mt.now_ms()
            metrics = [Metric(k, v, stamp, 0) for k, v in comparison_metrics(results).items()]
            client.log_batch(parent, metrics=metrics)
            client.log_table(parent, comparison_table(results), TABLE)
    except Exception as err:  # noqa: BLE001 - the printed comparison stands without MLflow
        from koderz.tracking.mlflow_tracker import one_line

        print(f"koderz.compare: not logged to MLflow: {one_line(err)}", file=sys.stderr)
        return None
    return parent
