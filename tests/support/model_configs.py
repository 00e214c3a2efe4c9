"""Helpers for the model-layer tests: a problem, call contexts, configs pointing at a server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from koderz.datasets.problem import Problem
from koderz.models.base import CallContext, ModelClient
from koderz.models.config import ModelConfig
from koderz.models.endpoint import Endpoint
from koderz.vocab import Phase
from tests.support.fakes.scripted_server import ScriptedServer

KEY_ENV = "KODERZ_TEST_KEY"
PROBLEM = Problem(
    task_id="Test/0",
    prompt='def add(a, b):\n    """Add two numbers."""\n',
    entry_point="add",
    canonical_solution="    return a + b\n",
    tests="def check(candidate):\n    assert candidate(1, 2) == 3\n",
    dataset="test",
)


def context(phase: Phase = Phase.GENERATE, index: int = 0) -> CallContext:
    return CallContext(problem=PROBLEM, phase=phase, sample_index=index)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def model_cfg(provider: str, server: ScriptedServer | None = None, **overrides: Any) -> ModelConfig:
    """A config for ``provider`` pointing at ``server`` with fast retries."""
    values: dict[str, Any] = {
        "provider": provider,
        "name": "scripted-model",
        "tier": "small_frontier",
        "price_input": 1.0,
        "price_output": 4.0,
        "price_cached_input": 0.5,
        "api_key_env": KEY_ENV,
        "max_retries": 2,
        "retry_backoff": 0.01,
        "timeout": 5.0,
    }
    if server is not None:
        values["base_url"] = server.openai_url
        values["host"] = server.url
    values.update(overrides)
    return ModelConfig(**values)


async def until(predicate: Callable[[], bool], step: float = 0.01) -> None:
    """Wait until ``predicate()`` holds (callers bound it: ``asyncio.timeout``)."""
    while True:
        if predicate():
            return
        await asyncio.sleep(step)


def endpoint_of(model: ModelClient) -> Endpoint:
    """The server endpoint a (non-built-in) model calls."""
    assert model.endpoint is not None, "a built-in model has no endpoint"
    return model.endpoint
