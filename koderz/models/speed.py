"""Speed test: tokens/s and time-to-answer per model on fixed prompts, warm-up excluded."""

from __future__ import annotations

import logging
import statistics

from koderz.datasets.problem import Problem
from koderz.errors import ModelError
from koderz.models.base import CallContext, ModelClient
from koderz.records import SpeedRow
from koderz.vocab import Phase

log = logging.getLogger(__name__)


def _context(index: int, prompt: str) -> CallContext:
    problem = Problem(
        task_id=f"speed/{index}", prompt=prompt, entry_point="", canonical_solution="", tests="", dataset="speed"
    )
    return CallContext(problem=problem, phase=Phase.GENERATE, sample_index=index)


async def _measure(client: ModelClient, prompts: list[str], warmup: int, repeats: int) -> SpeedRow:
    contexts = [_context(i, p) for i, p in enumerate(prompts)]
    latencies: list[float] = []
    output_tokens = input_tokens = errors = 0
    last_error = ""
    for i in range(warmup):
        try:
            await client.complete([{"role": "user", "content": prompts[i % len(prompts)]}], contexts[i % len(prompts)])
        except ModelError as exc:
            log.warning("warm-up of %s failed: %s", client.name, exc)
    for _ in range(repeats):
        for prompt, context in zip(prompts, contexts, strict=True):
            try:
                completion = await client.complete([{"role": "user", "content": prompt}], context)
            except ModelError as exc:
                errors += 1
                last_error = str(exc)
                continue
            latencies.append(completion.latency)
            output_tokens += completion.usage.output_tokens
            input_tokens += completion.usage.input_tokens
    busy = sum(latencies)
    return SpeedRow(
        model=client.name,
        calls=len(latencies),
        errors=errors,
        last_error=last_error,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        tokens_per_s=output_tokens / busy if busy > 0 else 0.0,
        mean_s=statistics.fmean(latencies) if latencies else 0.0,
        median_s=statistics.median(latencies) if latencies else 0.0,
        max_s=max(latencies, default=0.0),
    )


async def run_speed_test(
    clients: list[ModelClient], prompts: list[str], warmup: int = 1, repeats: int = 1
) -> list[SpeedRow]:
    """One row per model. Models run one after another (they must not compete for the
    host), prompts sequentially; ``warmup`` calls per model (loading weights, opening
    connections) are not measured. tokens/s = output tokens / summed time-to-answer.
    """
    if not prompts:
        raise ValueError("run_speed_test needs at least one prompt")
    return [await _measure(client, prompts, warmup, repeats) for client in clients]


def format_speed_table(rows: list[SpeedRow]) -> str:
    """A fixed-width table of ``run_speed_test`` rows, fastest model first."""
    header = f"{'model':<28} {'tok/s':>9} {'mean s':>8} {'median s':>9} {'max s':>8} {'calls':>6} {'errors':>6}"
    lines = [header, "-" * len(header)]
    for row in sorted(rows, key=lambda r: -r.tokens_per_s):
        lines.append(
            f"{row.model:<28} {row.tokens_per_s:>9.1f} {row.mean_s:>8.3f} {row.median_s:>9.3f}"
            f" {row.max_s:>8.3f} {row.calls:>6} {row.errors:>6}"
        )
    return "\n".join(lines)
