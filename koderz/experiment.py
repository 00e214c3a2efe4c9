"""One problem through the original koderz workflow: spec -> attempts -> verdicts ->
feedback -> checkpoint reviews -> result.

An ``Experiment`` owns everything that changes while its problem runs (timer, cost
ledger, history, spans); what it shares with concurrent problems (models, sandbox,
memory store, settings) it only reads or calls.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from koderz.cortex.specs import spec_tag
from koderz.cortex.store import MemoryRecord, MemoryStore
from koderz.datasets.problem import Problem
from koderz.errors import ModelError
from koderz.extract import extract
from koderz.models.base import CallContext, Completion, Message, ModelClient
from koderz.models.pricing import CostLedger
from koderz.prompts import Attempt, attempt_messages, checkpoint_messages, spec_messages
from koderz.sandbox.sandbox import Sandbox
from koderz.sandbox.verdict import Verdict
from koderz.tracking.timing import ProblemTimer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Role:
    """A model in one role (coder, spec writer, reviewer) with its config (prices, tier)."""

    client: ModelClient
    cfg: Any
    extract: bool = True  # False for models that answer whole programs (replay)


@dataclass(frozen=True)
class Settings:
    mode: str  # zero_shot | iterative
    n_samples: int = 1
    max_iterations: int = 50
    checkpoint_interval: int = 5
    spec_enabled: bool = True
    spec_reuse: bool = False
    checkpoints_enabled: bool = True
    cot: bool = True
    run_id: str = ""
    debug_dir: Path | None = None


@dataclass(frozen=True)
class Environment:
    """What every problem of a run shares (read-only)."""

    coder: Role
    spec_writer: Role
    reviewer: Role
    sandbox: Sandbox
    store: MemoryStore
    settings: Settings
    baseline: Any  # Prices of cost.baseline_model
    samples_for: Callable[[str], int] = lambda task_id: 1  # zero-shot samples per task


@dataclass
class SampleResult:
    sample_index: int
    passed: bool
    status: str
    tests_passed: int
    tests_total: int
    solution: str
    error: str | None = None


@dataclass
class ProblemResult:
    task_id: str
    mode: str
    passed: bool = False
    attempts: int = 0
    solved_at: int | None = None
    tests_passed: int = 0
    tests_total: int = 0
    status: str = "failed"
    error: str | None = None
    duration: float = 0.0
    finished_at: float = 0.0
    spec_reused: bool = False
    checkpoints: int = 0
    cached: bool = False
    isolation: dict[str, str] = field(default_factory=dict)
    samples: list[SampleResult] = field(default_factory=list)
    cost: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    spans: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProblemResult:
        """Rebuild a result stored with ``dataclasses.asdict`` (the result cache)."""
        fields = dict(data)
        fields["samples"] = [SampleResult(**s) for s in fields.get("samples", [])]
        return cls(**fields)

    def record(self) -> dict[str, Any]:
        """The JSON record (results.jsonl / results.json), without programs and spans."""
        data = asdict(self)
        data.pop("spans")
        data["samples"] = [{k: v for k, v in s.items() if k != "solution"} for s in data["samples"]]
        return data


class Experiment:
    """Runs one problem in one mode."""

    def __init__(self, problem: Problem, env: Environment, timer: ProblemTimer) -> None:
        self.problem = problem
        self.env = env
        self.settings = env.settings
        self.timer = timer
        self.ledger = CostLedger(env.baseline)
        self.result = ProblemResult(problem.task_id, env.settings.mode)
        self.spec: str | None = None
        self.guidance: str | None = None
        self.history: list[Attempt] = []

    async def run(self) -> ProblemResult:
        """Run the workflow; unexpected errors end up on the result, never raised."""
        try:
            if self.settings.spec_enabled:
                await self._write_spec()
            if self.settings.mode == "iterative":
                await self._iterate()
            else:
                await self._sample()
        except ModelError as exc:
            self.result.status, self.result.error = "model_error", str(exc)
        except Exception as exc:  # recorded on this problem; the run goes on
            log.exception("%s: unexpected error", self.problem.task_id)
            self.result.status, self.result.error = "error", f"{type(exc).__name__}: {exc}"
        finally:
            self._finish()
        await self._remember(
            f"result {self.problem.task_id}",
            json.dumps(self.result.record(), default=str),
            "result",
            {
                "passed": self.result.passed,
                "attempts": self.result.attempts,
                "cost": self.result.cost.get("total_cost", 0.0),
            },
            importance=0.7,
        )
        return self.result

    # phases -------------------------------------------------------------------------

    async def _write_spec(self) -> None:
        messages = spec_messages(self.problem)
        origin = spec_tag(self.env.spec_writer.cfg, messages)  # same spec model, settings and prompt
        if self.settings.spec_reuse:
            stored = await self._cortex(
                "cortex_recall", self.env.store.recall(tags=["spec", origin], mode="recent", limit=1)
            )
            if stored:
                self.spec, self.result.spec_reused = str(stored[0].get("content", "")), True
                return
        completion = await self._call(self.env.spec_writer, "spec_generation", "spec", messages, 0)
        self.spec = completion.text
        await self._remember(
            f"spec {self.problem.task_id}",
            self.spec,
            "spec",
            {"model": completion.model},
            category="spec",
            importance=0.6,
            tags=(origin,),
        )

    async def _sample(self) -> None:
        for index in range(self.env.samples_for(self.problem.task_id)):
            await self._attempt(index, attempt_messages(self.problem, cot=self.settings.cot, spec=self.spec))

    async def _iterate(self) -> None:
        settings = self.settings
        for index in range(settings.max_iterations):
            previous = self.history[-1] if self.history else None
            messages = attempt_messages(
                self.problem, cot=settings.cot, spec=self.spec, previous=previous, guidance=self.guidance
            )
            sample = await self._attempt(index, messages)
            if sample.passed or sample.status == "model_error":
                return
            failures = len(self.history)
            last = index == settings.max_iterations - 1
            if settings.checkpoints_enabled and failures % settings.checkpoint_interval == 0 and not last:
                await self._review()

    async def _attempt(self, index: int, messages: list[Message]) -> SampleResult:
        try:
            completion = await self._call(self.env.coder, "iteration_generate", "attempt", messages, index)
        except ModelError as exc:
            sample = SampleResult(index, False, "model_error", 0, len(self.problem.inputs), "", str(exc))
            self.result.samples.append(sample)
            return sample
        program = extract(completion.text, self.problem).program if self.env.coder.extract else completion.text
        with self._span("iteration_test", iteration=index + 1) as attrs:
            verdict = await self.env.sandbox.evaluate(self.problem, program)
            attrs.update(
                status=verdict.status,
                tests_passed=verdict.tests_passed,
                tests_total=verdict.tests_total,
                error=verdict.error or verdict.got,
            )
        sample = SampleResult(
            index, verdict.passed, verdict.status, verdict.tests_passed, verdict.tests_total, program, verdict.error
        )
        self.result.isolation = self.result.isolation or verdict.isolation
        self.result.samples.append(sample)
        if not verdict.passed:
            self.history.append(Attempt(index, program, verdict))
        self._debug(index, completion.text, program, verdict)
        await self._remember(
            f"attempt {index + 1} {self.problem.task_id}",
            program,
            "attempt",
            {
                "iteration": index + 1,
                "passed": verdict.passed,
                "status": verdict.status,
                "tests_passed": verdict.tests_passed,
                "tests_total": verdict.tests_total,
                "error": verdict.error,
            },
            importance=0.4,
        )
        return sample

    async def _review(self) -> None:
        messages = checkpoint_messages(self.problem, self.history, self.spec)
        completion = await self._call(self.env.reviewer, "checkpoint_review", "checkpoint", messages, len(self.history))
        self.guidance = completion.text
        self.result.checkpoints += 1
        await self._remember(
            f"checkpoint {self.result.checkpoints} {self.problem.task_id}",
            self.guidance,
            "checkpoint",
            {"after_failures": len(self.history)},
            importance=0.6,
        )

    # helpers ------------------------------------------------------------------------

    async def _call(self, role: Role, phase: str, ledger_phase: str, messages: list[Message], index: int) -> Completion:
        with self._span(phase, model=role.cfg.name, iteration=index + 1, prompt=messages[-1]["content"]) as attrs:
            completion = await role.client.complete(messages, CallContext(self.problem, ledger_phase, index))
            attrs.update(
                answer=completion.text,
                input_tokens=completion.usage.input_tokens,
                output_tokens=completion.usage.output_tokens,
            )
        self.ledger.record_for(ledger_phase, role.cfg, completion.usage)
        return completion

    async def _remember(
        self,
        title: str,
        content: str,
        kind: str,
        metadata: dict[str, Any],
        *,
        category: str = "experiment",
        importance: float = 0.5,
        tags: tuple[str, ...] = (),
    ) -> None:
        record = MemoryRecord(
            title=title,
            content=content,
            category=category,
            tags=(self.settings.run_id, self.problem.task_id, kind, *tags),
            importance=importance,
            metadata={"run_id": self.settings.run_id, "task_id": self.problem.task_id, **metadata},
        )
        await self._cortex("cortex_remember", self.env.store.remember(record))

    async def _cortex(self, phase: str, operation: Any) -> Any:
        with self._span(phase):
            return await operation

    @contextmanager
    def _span(self, name: str, **attrs: Any) -> Iterator[dict[str, Any]]:
        """Time a phase for the timing report and keep it as a trace span."""
        start, wall = time.perf_counter(), time.time()
        span = {"name": name, "start": wall, "attributes": dict(attrs)}
        try:
            yield span["attributes"]
        finally:
            end = time.perf_counter()
            self.timer.add(name, start, end)
            span["end"] = wall + (end - start)
            self.result.spans.append(span)

    def _finish(self) -> None:
        result, samples = self.result, self.result.samples
        result.attempts = len(samples)
        passing = [s for s in samples if s.passed]
        if passing:
            result.passed, result.status, result.error = True, "passed", None
            result.solved_at = passing[0].sample_index + 1
        chosen = passing[0] if passing else (samples[-1] if samples else None)
        if chosen is not None:
            result.tests_passed, result.tests_total = chosen.tests_passed, chosen.tests_total
            if not passing and result.status != "error":
                result.status, result.error = chosen.status, chosen.error
        costs = self.ledger.to_dict()
        result.cost = {k: costs[k] for k in ("total_cost", "by_tier", "by_phase", "frontier_estimate", "savings")}
        result.tokens = costs["tokens"]
        result.duration = self.timer.finish()
        result.finished_at = time.time()

    def _debug(self, index: int, answer: str, program: str, verdict: Verdict) -> None:
        if self.settings.debug_dir is None:
            return
        folder = self.settings.debug_dir / re.sub(r"[^A-Za-z0-9_.-]", "_", self.problem.task_id)
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"attempt_{index + 1:03d}"
        (folder / f"{stem}_raw.txt").write_text(answer)
        (folder / f"{stem}_program.py").write_text(program)
        (folder / f"{stem}_verdict.json").write_text(json.dumps(verdict.to_dict(), indent=2, default=str))
