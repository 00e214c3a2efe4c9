"""The per-problem workflow with scripted fake models (named as fakes) and the real sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from koderz.cortex.store import MemoryRecord, NullStore
from koderz.datasets.loaders import load_dataset
from koderz.errors import ModelError
from koderz.experiment import Environment, Experiment, Role, Settings
from koderz.models.base import CallContext, Completion, Message, Usage
from koderz.models.pricing import Prices
from koderz.sandbox.sandbox import Sandbox
from koderz.tracking.timing import ProblemTimer

WRONG = "```python\ndef add(x, y):\n    return x - y\n```"


@dataclass
class FakeModelConfig:
    name: str = "fake"
    tier: str = "small_frontier"
    price_input: float = 1.0
    price_output: float = 2.0
    price_cached_input: float | None = None


@dataclass
class FakeCoder:
    """Answers wrong ``wrong_first`` times, then the canonical program; records prompts."""

    wrong_first: int = 0
    name: str = "fake-coder"
    prompts: list[str] = field(default_factory=list)
    fail_with: str | None = None
    attempts: int = 0

    async def complete(self, messages: list[Message], context: CallContext) -> Completion:
        self.prompts.append(messages[-1]["content"])
        if self.fail_with:
            raise ModelError(self.fail_with)
        if context.phase == "checkpoint":
            return Completion("GUIDANCE: handle the sign", Usage(100, 10), model=self.name)
        if context.phase == "spec":
            return Completion("SPEC: add two numbers", Usage(50, 5), model=self.name)
        self.attempts += 1
        wrong = self.attempts <= self.wrong_first
        text = (
            WRONG.replace("add", context.problem.entry_point)
            if wrong
            else f"```python\n{context.problem.reference_program}\n```"
        )
        return Completion(text, Usage(1000, 200, 100), model=self.name)

    async def preflight(self) -> None: ...

    async def aclose(self) -> None: ...


class RecordingStore(NullStore):
    """A fake memory store that keeps what it is given."""

    def __init__(self) -> None:
        self.records: list[MemoryRecord] = []

    async def remember(self, record: MemoryRecord) -> str:
        self.records.append(record)
        return str(len(self.records))


@pytest.fixture(scope="module")
def problem():
    return load_dataset("humaneval")[53]  # add(x, y)


def environment(coder: FakeCoder, store=None, **settings) -> Environment:
    role = Role(coder, FakeModelConfig())
    defaults = {"mode": "iterative", "max_iterations": 6, "checkpoint_interval": 2, "run_id": "run-1"}
    return Environment(
        role,
        role,
        role,
        Sandbox(),
        store or NullStore(),
        Settings(**(defaults | settings)),
        Prices(3.0, 15.0),
        lambda task: 1,
    )


async def test_iterative_feeds_the_failure_back_and_reviews_at_checkpoints(problem) -> None:
    coder = FakeCoder(wrong_first=3)
    store = RecordingStore()
    result = await Experiment(problem, environment(coder, store), ProblemTimer(problem.task_id)).run()
    assert result.passed and result.solved_at == 4 and result.attempts == 4
    attempt_prompts = [p for p in coder.prompts if p.endswith("code block.")]
    assert "SPEC: add two numbers" in attempt_prompts[0]
    assert "previous attempt (#1) failed" in attempt_prompts[1]
    assert "Failing input: (0, 1)" in attempt_prompts[1] and "Got: -1" in attempt_prompts[1]
    assert result.checkpoints == 1  # after 2 failures; none after the 3rd
    assert "GUIDANCE: handle the sign" in attempt_prompts[2]
    assert "GUIDANCE" not in attempt_prompts[1]
    kinds = [r.tags[2] for r in store.records]  # (run id, task id, kind, ...)
    assert kinds == ["spec", "attempt", "attempt", "checkpoint", "attempt", "attempt", "result"]
    assert all("run-1" in r.tags and problem.task_id in r.tags for r in store.records)


async def test_costs_are_usage_times_price_by_phase(problem) -> None:
    result = await Experiment(problem, environment(FakeCoder(wrong_first=2)), ProblemTimer(problem.task_id)).run()
    # spec 50/5, 3 attempts 1000/200 (100 cached, same price), 1 checkpoint 100/10; $1 in, $2 out per M
    assert result.cost["by_phase"]["spec"] == pytest.approx((50 * 1 + 5 * 2) / 1e6)
    assert result.cost["by_phase"]["attempt"] == pytest.approx(3 * (1000 * 1 + 200 * 2) / 1e6)
    assert result.cost["by_phase"]["checkpoint"] == pytest.approx((100 * 1 + 10 * 2) / 1e6)
    assert result.cost["frontier_estimate"] == pytest.approx(((50 + 3000 + 100) * 3 + (5 + 600 + 10) * 15) / 1e6)
    assert result.tokens == {"input": 3150, "output": 615, "cached_input": 300}


async def test_iterative_stops_at_max_iterations(problem) -> None:
    result = await Experiment(
        problem, environment(FakeCoder(wrong_first=99), max_iterations=3), ProblemTimer(problem.task_id)
    ).run()
    assert not result.passed and result.attempts == 3 and result.status == "failed"
    assert result.tests_total == len(problem.inputs) and result.solved_at is None


async def test_zero_shot_ablations_skip_spec_and_reviews(problem) -> None:
    coder = FakeCoder(wrong_first=1)
    env = environment(coder, mode="zero_shot", spec_enabled=False, checkpoints_enabled=False)
    result = await Experiment(problem, env, ProblemTimer(problem.task_id)).run()
    assert not result.passed and result.attempts == 1 and coder.prompts == coder.prompts[:1]
    assert "Specification" not in coder.prompts[0]


async def test_a_model_error_is_recorded_and_does_not_raise(problem) -> None:
    coder = FakeCoder(fail_with="openai gpt-x at http://x: HTTP 500 after 3 retries")
    result = await Experiment(problem, environment(coder, spec_enabled=False), ProblemTimer(problem.task_id)).run()
    assert result.status == "model_error" and "HTTP 500" in result.error and not result.passed


async def test_spans_cover_every_phase_for_traces(problem) -> None:
    result = await Experiment(problem, environment(FakeCoder(wrong_first=2)), ProblemTimer(problem.task_id)).run()
    names = [s["name"] for s in result.spans]
    assert names.count("iteration_generate") == 3 and names.count("iteration_test") == 3
    assert "spec_generation" in names and "checkpoint_review" in names and "cortex_remember" in names
    generate = next(s for s in result.spans if s["name"] == "iteration_generate")
    assert "Implement" in generate["attributes"]["prompt"] and generate["attributes"]["output_tokens"] == 200
    assert all(s["end"] >= s["start"] for s in result.spans)
