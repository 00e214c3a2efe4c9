"""``mode=speed``: the original koderz speed test over the run's role models."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from koderz.models.registry import ClientPool, build_model
from koderz.models.speed import format_speed_table, run_speed_test
from koderz.plan import Plan

log = logging.getLogger(__name__)


async def run_speed_mode(plan: Plan, run_dir: Path) -> list[dict]:
    """Measure tokens/s and time-to-answer of each distinct role model; write speed.json."""
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
    await asyncio.to_thread(_write_rows, run_dir, rows)
    log.info("\n%s\nrun folder: %s", format_speed_table(rows), run_dir)
    return rows


def _write_rows(run_dir: Path, rows: list[dict]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "speed.json").write_text(json.dumps(rows, indent=2))
