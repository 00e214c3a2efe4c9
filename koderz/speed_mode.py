"""``mode=speed``: the original koderz speed test over the run's role models, in a run folder.

The folder holds what any run's does — config.yaml, run.json, koderz.log — and ``speed.json``
(one typed row per model) instead of problem records.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path

from koderz.models.registry import ClientPool, build_model
from koderz.models.speed import format_speed_table, run_speed_test
from koderz.plan import Plan
from koderz.records import RunFolder, RunPart, RunState, SpeedResults
from koderz.timing import interpreter_start
from koderz.vocab import PartStatus

log = logging.getLogger(__name__)


async def run_speed_mode(plan: Plan, run_dir: Path, started: float | None = None) -> SpeedResults:
    """Measure tokens/s and time-to-answer of each distinct role model; write the run folder.
    ``started``: when the job started (a sweep's job); default: the interpreter's start."""
    folder = RunFolder(run_dir, parts=())
    part = RunPart(started=interpreter_start() if started is None else started)
    state = RunState(run_id=f"{run_dir.name}-{uuid.uuid4().hex[:6]}", parts=[part])
    await asyncio.to_thread(_begin, folder, plan, state)
    pool = ClientPool()
    clients, seen = [], set()
    speed = plan.config.speed
    try:
        for model in (plan.coder, *plan.helper_models):
            if model.name in seen:
                continue
            seen.add(model.name)
            client = build_model(model, pool)
            await client.preflight()
            clients.append(client)
        rows = await run_speed_test(clients, list(speed.prompts), speed.warmup, speed.repeats)
    finally:
        await pool.aclose()
    results = SpeedResults(rows=rows)
    part.ended = time.time()
    part.duration, part.status = part.ended - part.started, PartStatus.FINISHED
    await asyncio.to_thread(_finish, folder, results, state)
    log.info("\n%s\nrun folder: %s", format_speed_table(rows), run_dir)
    return results


def _begin(folder: RunFolder, plan: Plan, state: RunState) -> None:
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.write_config(plan.to_dict())
    folder.write_state(state)


def _finish(folder: RunFolder, results: SpeedResults, state: RunState) -> None:
    folder.write_speed(results)
    folder.write_state(state)
