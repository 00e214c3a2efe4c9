"""The speed test measures each model on fixed prompts against the scripted server."""

from __future__ import annotations

import pytest

from koderz.models.registry import build_model
from koderz.models.speed import format_speed_table, run_speed_test
from tests.support.fakes.scripted_server import Reply
from tests.support.model_configs import model_cfg


async def test_speed_test_reports_tokens_per_second_and_excludes_warmup(start_server, pool):
    server = await start_server(lambda body, route, i: Reply("x" * 400, output_tokens=100), latency=0.05)
    fast = build_model(model_cfg("openai", server, name="fast-openai"), pool)
    local = build_model(model_cfg("ollama", server, name="local-ollama"), pool)

    rows = await run_speed_test([fast, local], ["p1", "p2", "p3"], warmup=2, repeats=2)

    assert server.hits("openai.chat") == 2 + 3 * 2 and server.hits("ollama.chat") == 2 + 3 * 2
    assert [row.model for row in rows] == ["fast-openai", "local-ollama"]
    for row in rows:
        assert row.calls == 6 and row.errors == 0 and row.output_tokens == 600
        assert row.mean_s >= 0.05 and row.median_s >= 0.05
        assert row.tokens_per_s == pytest.approx(600 / (row.mean_s * 6))
    table = format_speed_table(rows)
    assert "fast-openai" in table and "local-ollama" in table and "tok/s" in table


async def test_failed_calls_are_counted_not_fatal(start_server, pool):
    server = await start_server(lambda body, route, i: Reply(status=400) if i % 2 else "ok")
    model = build_model(model_cfg("ollama", server), pool)

    (row,) = await run_speed_test([model], ["a", "b"], warmup=0)

    assert row.calls == 1 and row.errors == 1 and "HTTP 400" in row.last_error
