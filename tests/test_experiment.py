"""The per-problem workflow with scripted fake models (named as fakes) and the real sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from koderz.cortex.store import MemoryRecord, NullStore
from koderz.datasets.loaders import load_dataset
from koderz.errors import ModelError
from koderz.experiment import Environment, Experiment, Role, Settings
from koderz.models.base import CallContext, Completion, Message, Usage, WritesAnswers
from koderz.models.pricing import Prices
from koderz.prompts import PromptStyle
from koderz.sandbox.sandbox import Sandbox
from koderz.vocab import Category, Mode, Phase, Status

WRONG = "```python\ndef add(x, y):\n    return x - y\n```"


@dataclass
class FakeModelConfig:
    name: str = "fake"
    tier: str = "small_frontier"
    price_input: float = 1.0
    price_output: float = 2.0
    price_cached_input: float | None = None


@dataclass
class FakeCoder(WritesAnswers):
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
        if context.phase is Phase.REVIEW:
            return Completion("GUIDANCE: handle the sign", Usage(100, 10), model=self.name)
        if context.phase is Phase.SPEC:
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

    keeps = True

    def __init__(self) -> None:
        self.records: list[MemoryRecord] = []

    async def remember(self, record: MemoryRecord) -> str:
        self.records.append(record)
        return str(len(self.records))


@pytest.fixture(scope="module")
def problem():
    return load_dataset("humaneval")[53]  # add(x, y)


def environment(
    coder: FakeCoder, store=None, *, spec: bool = True, reviews: bool = True, **settings: Any
) -> Environment:
    role = Role(coder, FakeModelConfig())  # type: ignore[arg-type]  # a fake config with the priced fields
    defaults: dict[str, Any] = {
        "n_samples": 1,
        "max_iterations": 6,
        "checkpoint_interval": 2,
        "spec_reuse": False,
        "prompt": PromptStyle(),
        "run_id": "run-1",
        "debug_dir": None,
    }
    return Environment(
        coder=role,
        spec_writer=role if spec else None,
        reviewer=role if reviews else None,
        evaluator=Sandbox(),
        store=store or NullStore(),
        settings=Settings(**(defaults | settings)),
        baseline=Prices(3.0, 15.0),
    )


async def test_iterative_feeds_the_failure_back_and_reviews_at_checkpoints(problem) -> None:
    coder = FakeCoder(wrong_first=3)
    store = RecordingStore()
    result = (await Experiment(problem, Mode.ITERATIVE, environment(coder, store)).run()).record
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
    result = (await Experiment(problem, Mode.ITERATIVE, environment(FakeCoder(wrong_first=2))).run()).record
    # spec 50/5, 3 attempts 1000/200 (100 cached, same price), 1 checkpoint 100/10; $1 in, $2 out per M
    assert result.cost.by_phase["spec"] == pytest.approx((50 * 1 + 5 * 2) / 1e6)
    assert result.cost.by_phase["attempt"] == pytest.approx(3 * (1000 * 1 + 200 * 2) / 1e6)
    assert result.cost.by_phase["checkpoint"] == pytest.approx((100 * 1 + 10 * 2) / 1e6)
    assert result.cost.frontier_estimate == pytest.approx(((50 + 3000 + 100) * 3 + (5 + 600 + 10) * 15) / 1e6)
    assert (result.tokens.input, result.tokens.output, result.tokens.cached_input) == (3150, 615, 300)


async def test_iterative_stops_at_max_iterations(problem) -> None:
    result = (
        await Experiment(problem, Mode.ITERATIVE, environment(FakeCoder(wrong_first=99), max_iterations=3)).run()
    ).record
    assert not result.passed and result.attempts == 3 and result.status is Status.FAILED
    assert result.tests_total == len(problem.inputs) and result.solved_at is None


async def test_zero_shot_ablations_skip_spec_and_reviews(problem) -> None:
    coder = FakeCoder(wrong_first=1)
    env = environment(coder, spec=False, reviews=False)
    result = (await Experiment(problem, Mode.ZERO_SHOT, env).run()).record
    assert not result.passed and result.attempts == 1 and coder.prompts == coder.prompts[:1]
    assert "Specification" not in coder.prompts[0]


async def test_a_model_error_is_recorded_and_does_not_raise(problem) -> None:
    coder = FakeCoder(fail_with="openai gpt-x at http://x: HTTP 500 after 3 retries")
    result = (await Experiment(problem, Mode.ITERATIVE, environment(coder, spec=False)).run()).record
    assert result.status is Status.MODEL_ERROR and "HTTP 500" in (result.error or "") and not result.passed
    assert not result.has_verdict


async def test_spans_cover_every_phase_for_traces(problem) -> None:
    result = await Experiment(problem, Mode.ITERATIVE, environment(FakeCoder(wrong_first=2), RecordingStore())).run()
    names = [s.name for s in result.spans]
    assert names.count(Phase.GENERATE) == 3 and names.count(Phase.TEST) == 3
    assert {Phase.SPEC, Phase.REVIEW, Phase.MEMORY_WRITE} <= set(names)
    without_memory = await Experiment(problem, Mode.ITERATIVE, environment(FakeCoder(wrong_first=2))).run()
    assert not [s.name for s in without_memory.spans if s.name.category is Category.CORTEX]  # cortex=off: none
    generate = next(s for s in result.spans if s.name is Phase.GENERATE)
    assert generate.call is not None and "Implement" in generate.call.prompt and generate.call.output_tokens == 200
    assert all(s.end >= s.start for s in result.spans)


async def test_every_attempt_is_kept_with_its_program_and_verdict(problem) -> None:
    result = await Experiment(problem, Mode.ITERATIVE, environment(FakeCoder(wrong_first=2))).run()
    assert [a.index for a in result.attempts] == [0, 1, 2]
    assert [a.passed for a in result.attempts] == [False, False, True]
    assert "return x - y" in result.attempts[0].program and result.attempts[0].got == "-1"
    assert [o.passed for o in result.record.outcomes] == [False, False, True]
    (sample,) = result.final_samples(feedback=True)  # an iteration's final sample is its last attempt
    assert sample.passed and sample.sample_index == 0 and "return x + y" in sample.solution


async def test_a_truncated_answer_is_counted_and_the_next_prompt_says_so(problem) -> None:
    class CutCoder(FakeCoder):
        async def complete(self, messages, context):
            completion = await super().complete(messages, context)
            if context.phase is Phase.GENERATE and self.attempts == 1:
                return Completion(completion.text, completion.usage, model=self.name, finish_reason="length")
            return completion

    coder = CutCoder(wrong_first=1)
    result = await Experiment(problem, Mode.ITERATIVE, environment(coder, spec=False, reviews=False)).run()
    assert result.record.truncated == 1 and result.attempts[0].finish_reason == "length"
    assert "cut off at the token limit" in coder.prompts[1]
