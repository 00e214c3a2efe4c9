"""Whole runs through the real openai and ollama SDK clients against the scripted server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from koderz.plan import Plan
from koderz.records import RunFolder
from koderz.runner import Runner
from tests.conftest import compose_config
from tests.support.fakes.scripted_server import Reply, Rules, ScriptedServer, fenced
from tests.support.model_configs import free_port

WRONG = fenced("def add(x: int, y: int):\n    return x - y\n", "I think subtraction works.")
RIGHT = fenced("def add(x: int, y: int):\n    return x + y\n", "Fixed: add them.")
MODELS = {"openai": "gpt-4o-mini", "ollama": "qwen2.5-coder-32b"}


def script(attempts: list) -> Rules:
    return Rules(
        [
            (r"Write a concise specification", ["SPEC-TEXT: return x + y"]),
            (r"Diagnose what is going wrong", ["GUIDANCE-7731: you subtract; add instead"]),
            (r"Implement the Python function", attempts),
        ]
    )


def overrides(provider: str, server: ScriptedServer, *extra: str) -> list[str]:
    name = MODELS[provider]
    where = [
        f"{role}.base_url={server.openai_url}" if provider == "openai" else f"{role}.host={server.url}"
        for role in ("model", "spec_model", "checkpoint_model")
    ]
    return [
        f"model={name}",
        f"model@spec_model={name}",
        f"model@checkpoint_model={name}",
        *where,
        "problems=[HumanEval/53]",
        "tracking=off",
        "cortex=off",
        "cache=false",
        *extra,
    ]


@pytest.fixture(autouse=True)
def api_key(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-scripted")


@pytest.mark.parametrize("provider", ["openai", "ollama"])
async def test_iterative_run_feeds_back_and_reviews_through_the_sdk(provider, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    async with ScriptedServer(script([WRONG, WRONG, WRONG, RIGHT])) as server:
        cfg = compose_config(*overrides(provider, server, "mode=iterative", "checkpoint_interval=2"))
        summary = (await Runner(Plan.build(cfg), tmp_path / "run").run()).summary
        prompts = [r.prompt for r in server.chat_requests]
    assert summary.passed == 1 and summary.mean_attempts == 4
    attempts = [p for p in prompts if "code block" in p and "Diagnose" not in p]
    assert len(attempts) == 4
    assert "SPEC-TEXT" in attempts[0]
    assert "Got: -1" in attempts[1] and "return x - y" in attempts[1]  # failing case and previous code
    review = [i for i, p in enumerate(prompts) if "Diagnose what is going wrong" in p]
    assert len(review) == 1
    assert "GUIDANCE-7731" in prompts[review[0] + 1] and all("GUIDANCE-7731" not in p for p in prompts[: review[0]])


async def test_costs_are_usage_times_price(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    replies: list[Reply | str | dict[str, Any]] = [
        Reply(text=RIGHT, input_tokens=1200, output_tokens=300, cached_tokens=200)
    ]
    async with ScriptedServer(
        Rules([(r"specification", [Reply(text="SPEC", input_tokens=100, output_tokens=50)]), (r"Implement", replies)])
    ) as server:
        cfg = compose_config(*overrides("openai", server, "mode=zero_shot"))
        summary = (await Runner(Plan.build(cfg), tmp_path / "run").run()).summary
    # gpt-4o-mini: $0.15 in, $0.60 out, $0.075 cached per million tokens
    attempt = (1000 * 0.15 + 200 * 0.075 + 300 * 0.60) / 1e6
    spec = (100 * 0.15 + 50 * 0.60) / 1e6
    assert summary.cost.by_phase == pytest.approx({"spec": spec, "attempt": attempt})
    assert summary.cost.total == pytest.approx(spec + attempt)
    assert summary.cost.by_tier == pytest.approx({"small_frontier": spec + attempt})
    # frontier-only: the same tokens at claude-sonnet-4-5 ($3 in, $15 out, $0.30 cached)
    sonnet = (1000 * 3 + 200 * 0.30 + 300 * 15 + 100 * 3 + 50 * 15) / 1e6
    assert summary.cost.frontier_estimate == pytest.approx(sonnet)
    assert (summary.tokens.input, summary.tokens.output, summary.tokens.cached_input) == (1300, 350, 200)


@pytest.mark.parametrize("provider", ["openai", "ollama"])
async def test_429_and_503_are_retried_then_succeed(provider, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    faults = [
        Reply(status=429, error="slow down", headers={"retry-after-ms": "5"}),
        Reply(status=503, error="loading", headers={"retry-after-ms": "5"}),
    ]
    rules = script([RIGHT])
    rules.faults = faults
    async with ScriptedServer(rules) as server:
        cfg = compose_config(
            *overrides(provider, server, "mode=zero_shot", "spec.enabled=false", "model.retry_backoff=0.01")
        )
        summary = (await Runner(Plan.build(cfg), tmp_path / "run").run()).summary
        hits = len(server.chat_requests)
    assert summary.passed == 1 and hits == 3


async def test_a_non_retryable_400_is_recorded_once_and_the_run_goes_on(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    rules = Rules(
        [(r"has_close_elements", [Reply(status=400, error="bad request: context too long")]), (r"Implement", [RIGHT])]
    )
    async with ScriptedServer(rules) as server:
        cfg = compose_config(
            *overrides("openai", server, "mode=iterative", "spec.enabled=false"), "problems=[HumanEval/0,HumanEval/53]"
        )
        summary = (await Runner(Plan.build(cfg), tmp_path / "run").run()).summary
        first_task_calls = [r for r in server.chat_requests if "has_close_elements" in r.prompt]
    records = {r["task_id"]: r for r in json.loads((tmp_path / "run" / "results.json").read_text())["problems"]}
    assert len(first_task_calls) == 1
    assert records["HumanEval/0"]["status"] == "model_error" and "400" in records["HumanEval/0"]["error"]
    assert records["HumanEval/53"]["passed"] and summary.problems == 2


def _cli(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "koderz", *args, "tracking=off", "cortex=off", "end=2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_runs_against_any_openai_compatible_and_ollama_server(tmp_path) -> None:
    env = dict(os.environ, OPENAI_API_KEY="sk-test-scripted")
    canonical = Rules([(r"specification", ["SPEC"])], default=fenced("def f():\n    pass\n"))
    with ScriptedServer(canonical).in_thread() as server:
        for args in (
            ["model=gpt-4o-mini", f"model.base_url={server.openai_url}", "spec.enabled=false"],
            ["model=qwen2.5-coder-32b", f"model.host={server.url}", "spec.enabled=false"],
        ):
            done = _cli(tmp_path, env, *args)
            assert done.returncode == 0, done.stderr
            assert "passed          0/2" in done.stdout + done.stderr  # the server's answers are wrong
        assert len(server.chat_requests) == 4


@pytest.mark.parametrize(
    ("args", "env_key", "needle"),
    [
        (["model=gpt-4o-mini"], None, "OPENAI_API_KEY"),
        (["model=gpt-4o-mini", "model.base_url=http://127.0.0.1:{port}/v1"], "sk-x", "127.0.0.1:{port}"),
        (["model=qwen2.5-coder-32b", "model.host=http://127.0.0.1:{port}"], None, "127.0.0.1:{port}"),
    ],
)
def test_preflight_failures_are_one_line_with_exit_code_2(tmp_path, args, env_key, needle, no_stray_processes) -> None:
    """The sandbox prepares while the models are checked: a failed preflight closes it (no process left)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    if env_key:
        env["OPENAI_API_KEY"] = env_key
    done = _cli(tmp_path, env, *[a.format(port=port) for a in args])
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle.format(port=port) in lines[0] and "Traceback" not in done.stderr


def test_speed_mode_reports_tokens_per_second_for_each_model(tmp_path) -> None:
    env = dict(os.environ, OPENAI_API_KEY="sk-test-scripted")
    with ScriptedServer(
        Rules(default=Reply(text="def f():\n    return 1\n", output_tokens=40)), latency=0.05
    ).in_thread() as server:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "koderz",
                "mode=speed",
                "model=gpt-4o-mini",
                f"model.base_url={server.openai_url}",
                "model@spec_model=qwen2.5-coder-32b",
                f"spec_model.host={server.url}",
                "tracking=off",
                "cortex=off",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        # 2 models x (1 warm-up + 3 prompts); the checkpoint model is the reference model
        assert len(server.chat_requests) == 8
    folder = RunFolder(next((tmp_path / "outputs" / "runs").glob("*/*/speed.json")).parent)
    speeds = {row.model: row for row in folder.read_speed().rows}
    assert {"gpt-4o-mini", "qwen2.5-coder:32b"} <= set(speeds)
    for name in ("gpt-4o-mini", "qwen2.5-coder:32b"):
        assert speeds[name].calls == 3 and speeds[name].errors == 0
        assert 0 < speeds[name].tokens_per_s < 40 / 0.05 + 1
