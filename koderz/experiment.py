"""One problem through the original koderz workflow: spec -> attempts -> verdicts -> feedback ->
checkpoint reviews -> a ``ProblemResult`` (record, every attempt, spans).

An ``Experiment`` owns everything that changes while its problem runs (cost ledger, history,
spans); what it shares with concurrent problems (models, evaluator, memory store, settings) it
only reads or calls. It knows nothing of Hydra, the run folder or tracking.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from koderz.cortex.specs import spec_tag
from koderz.cortex.store import MemoryRecord, MemoryStore
from koderz.datasets.problem import Problem
from koderz.errors import ModelError, SandboxError
from koderz.evaluators import Evaluator
from koderz.models.base import CallContext, Completion, Message, ModelClient
from koderz.models.config import ModelConfig
from koderz.models.prefill import continues
from koderz.models.pricing import CostLedger, Prices
from koderz.prompts import Attempt, PromptStyle, attempt_messages, checkpoint_messages, spec_messages
from koderz.records import (
    AttemptRecord,
    Cost,
    ModelCall,
    ProblemRecord,
    ProblemResult,
    Span,
    Tokens,
    VerdictOutcome,
)
from koderz.sandbox.mechanism import weakest
from koderz.sandbox.verdict import Verdict
from koderz.vocab import Mode, Phase, Status

log = logging.getLogger(__name__)

MAX_ERROR = 2000  # characters of an error message kept on a record
MIN_QUEUE = 0.001  # seconds: a shorter wait is taking a free slot, not a queue (no span of its own)


@dataclass(frozen=True)
class Role:
    """A model in one role (coder, spec writer, reviewer) with its config (prices, tier)."""

    client: ModelClient
    cfg: ModelConfig


@dataclass(frozen=True)
class Settings:
    """The run-level switches one problem needs."""

    n_samples: int
    max_iterations: int
    checkpoint_interval: int
    spec_reuse: bool
    prompt: PromptStyle
    run_id: str
    debug_dir: Path | None


@dataclass(frozen=True)
class Environment:
    """What every problem of a run shares (read-only). ``spec_writer``/``reviewer`` are None when
    the role takes no part (spec disabled; no checkpoint reviews)."""

    coder: Role
    spec_writer: Role | None
    reviewer: Role | None
    evaluator: Evaluator
    store: MemoryStore
    settings: Settings
    baseline: Prices  # prices of the frontier-only estimate


class Experiment:
    """Runs one problem in one mode (zero_shot: samples; iterative: attempts with feedback)."""

    def __init__(self, problem: Problem, mode: Mode, env: Environment) -> None:
        self.problem = problem
        self.mode = mode
        self.env = env
        self.settings = env.settings
        self.ledger = CostLedger(env.baseline)
        self.spec: str | None = None
        self.spec_reused = False
        self.spec_from: str | None = None  # the run that wrote the reused spec
        self.guidance: str | None = None
        self.checkpoints = 0
        self.history: list[Attempt] = []
        self.attempts: list[AttemptRecord] = []
        self.spans: list[Span] = []
        self._isolation: dict[str, str] = {}

    async def run(self) -> ProblemResult:
        """Run the workflow; failures end up on the result (model_error, harness_error), never raised."""
        started = time.perf_counter()
        status: Status | None = None
        error: str | None = None
        try:
            if self.env.spec_writer is not None:
                await self._write_spec()
            if self.mode.spec.feedback:
                await self._iterate()
            else:
                await self._sample()
        except ModelError as exc:
            status, error = Status.MODEL_ERROR, str(exc)
        except SandboxError as exc:
            status, error = Status.HARNESS_ERROR, str(exc)
        except Exception as exc:
            log.exception("%s: unexpected error", self.problem.task_id)
            status, error = Status.HARNESS_ERROR, f"{type(exc).__name__}: {exc}"
        result = self._result(status, error, time.perf_counter() - started)
        await self._remember(
            f"result {self.problem.task_id}",
            result.record.model_dump_json(),
            "result",
            {"passed": result.record.passed, "attempts": result.record.attempts, "cost": result.record.cost.total},
            importance=0.7,
        )
        return result

    # phases -------------------------------------------------------------------------

    async def _write_spec(self) -> None:
        assert self.env.spec_writer is not None
        messages = spec_messages(self.problem)
        origin = spec_tag(self.env.spec_writer.cfg, messages)  # same spec model, settings and prompt
        if self.settings.spec_reuse and self.env.store.keeps:
            with self._span(Phase.MEMORY_READ):
                stored = await self.env.store.recall(tags=["spec", origin], mode="recent", limit=1)
            if stored:
                self.spec, self.spec_reused = str(stored[0].get("content", "")), True
                origin_run = (stored[0].get("metadata") or {}).get("run_id")
                self.spec_from = str(origin_run) if origin_run else None
                return
        completion = await self._call(self.env.spec_writer, Phase.SPEC, messages, 0)
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
        for index in range(self._samples_wanted()):
            await self._attempt(index, attempt_messages(self.problem, self.settings.prompt, spec=self.spec))

    def _samples_wanted(self) -> int:
        limit = self.env.coder.client.sample_limit(self.problem.task_id)
        return self.settings.n_samples if limit is None else min(self.settings.n_samples, limit)

    async def _iterate(self) -> None:
        settings = self.settings
        for index in range(settings.max_iterations):
            previous = self.history[-1] if self.history else None
            messages = attempt_messages(
                self.problem, settings.prompt, spec=self.spec, previous=previous, guidance=self.guidance
            )
            attempt = await self._attempt(index, messages)
            if attempt.passed:
                return
            last = index == settings.max_iterations - 1
            if self.env.reviewer is not None and len(self.history) % settings.checkpoint_interval == 0 and not last:
                await self._review()

    async def _attempt(self, index: int, messages: list[Message]) -> AttemptRecord:
        completion = await self._call(self.env.coder, Phase.GENERATE, messages, index)
        program = (
            completion.text
            if self.env.coder.client.answers_programs
            else self.settings.prompt.program(completion.text, self.problem)
        )
        with self._span(Phase.TEST, iteration=index + 1) as span:
            preamble = self.settings.prompt.preamble(self.problem)
            verdict = await self.env.evaluator.evaluate(self.problem, program, preamble=preamble)
            span.verdict = VerdictOutcome(
                status=verdict.status,
                tests_passed=verdict.tests_passed,
                tests_total=verdict.tests_total,
                tests_run=verdict.tests_run,
                failing_input=verdict.failing_input,  # the first failing test (its input, or its name)
                failed_tests=list(verdict.failed_tests),
                error=verdict.error or verdict.got,
            )
        attempt = _attempt_record(self.problem.task_id, self.mode, index, program, verdict, completion)
        prefill = messages[-1]["content"] if messages[-1]["role"] == "assistant" else ""
        if prefill and not self.env.coder.client.answers_programs:
            attempt.prefill_continued = continues(prefill, completion.text)
        self.attempts.append(attempt)
        self._isolation = verdict.isolation
        if not verdict.passed:
            self.history.append(Attempt(index, program, verdict, truncated=completion.truncated))
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
        return attempt

    async def _review(self) -> None:
        assert self.env.reviewer is not None
        messages = checkpoint_messages(self.problem, self.history, self.spec)
        completion = await self._call(self.env.reviewer, Phase.REVIEW, messages, len(self.history))
        self.guidance = completion.text
        self.checkpoints += 1
        await self._remember(
            f"checkpoint {self.checkpoints} {self.problem.task_id}",
            self.guidance,
            "checkpoint",
            {"after_failures": len(self.history)},
            importance=0.6,
        )

    # helpers ------------------------------------------------------------------------

    async def _call(self, role: Role, phase: Phase, messages: list[Message], index: int) -> Completion:
        ledger_key = phase.spec.ledger
        assert ledger_key is not None
        prompt = "\n\n".join(m["content"] for m in messages if m["role"] != "system")  # with a prefilled answer
        with self._span(phase, iteration=index + 1) as span:
            span.call = call = ModelCall(model=role.cfg.name, prompt=prompt)
            completion = await role.client.complete(messages, CallContext(self.problem, phase, index))
            call.answer = completion.text
            call.input_tokens = completion.usage.input_tokens
            call.output_tokens = completion.usage.output_tokens
            call.finish_reason = completion.finish_reason
            call.server_seconds = completion.server_time
            call.queued_seconds = completion.queued
        self._split_queue(completion.queued)
        self.ledger.record_for(ledger_key, role.cfg, completion.usage)
        return completion

    def _split_queue(self, queued: float) -> None:
        """The last (model call) span's wait for its server becomes a ``queue`` span before it, so
        a one-slot server's queue is not counted as model time (waits between retries are summed)."""
        call = self.spans[-1]
        queued = min(max(queued, 0.0), call.end - call.start)
        if queued >= MIN_QUEUE:
            self.spans.insert(-1, Span(name=Phase.QUEUE, start=call.start, end=call.start + queued))
            call.start += queued

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
        if not self.env.store.keeps:  # cortex=off: no memory operation to time or trace
            return
        record = MemoryRecord(
            title=title,
            content=content,
            category=category,
            tags=(self.settings.run_id, self.problem.task_id, kind, *tags),
            importance=importance,
            metadata={"run_id": self.settings.run_id, "task_id": self.problem.task_id, **metadata},
        )
        with self._span(Phase.MEMORY_WRITE):
            await self.env.store.remember(record)

    @contextmanager
    def _span(self, phase: Phase, iteration: int | None = None) -> Iterator[Span]:
        """Time a phase and keep it as a trace span (also when it raises or is cancelled); the
        caller fills in what the phase produced."""
        wall, start = time.time(), time.perf_counter()
        span = Span(name=phase, start=wall, end=wall, iteration=iteration)
        try:
            yield span
        finally:
            span.end = wall + time.perf_counter() - start
            self.spans.append(span)

    def _result(self, status: Status | None, error: str | None, duration: float) -> ProblemResult:
        """The record: the first passing attempt decides, else the last; a failure without a
        verdict (status given) wins over the attempts before it."""
        attempts = self.attempts
        passing = next((a for a in attempts if a.passed), None)
        chosen = passing or (attempts[-1] if attempts else None)
        if status is None:
            status = chosen.status if chosen is not None else Status.HARNESS_ERROR
            error = chosen.error if chosen is not None else "no attempt was made"
        costs = self.ledger
        usage = costs.usage
        base = [a.base_passed for a in attempts if a.base_passed is not None]
        record = ProblemRecord(
            task_id=self.problem.task_id,
            mode=self.mode,
            status=Status.PASSED if passing is not None and status.is_verdict else status,
            passed=passing is not None and status.is_verdict,
            base_passed=any(base) if base else None,
            attempts=len(attempts),
            solved_at=passing.index + 1 if passing is not None else None,
            tests_passed=chosen.tests_passed if chosen is not None else 0,
            tests_total=chosen.tests_total if chosen is not None else len(self.problem.inputs),
            error=None if passing is not None and status.is_verdict else _bounded(error),
            duration=duration,
            finished_at=time.time(),
            spec_reused=self.spec_reused,
            spec_from=self.spec_from,
            checkpoints=self.checkpoints,
            truncated=sum(1 for a in attempts if a.finish_reason == "length"),
            prefill_ignored=sum(1 for a in attempts if a.prefill_continued is False),
            isolation=self._isolation,
            mechanism=weakest(a.mechanism for a in attempts),
            outcomes=[a.outcome() for a in attempts],
            cost=Cost(
                total=costs.total_cost,
                by_tier=costs.by_tier(),
                by_phase=costs.by_phase(),
                by_model=costs.by_model(),
                frontier_estimate=costs.frontier_estimate,
                savings=costs.savings,
            ),
            tokens=Tokens(input=usage.input_tokens, output=usage.output_tokens, cached_input=usage.cached_input_tokens),
        )
        return ProblemResult(record=record, attempts=attempts, spans=self.spans)

    def _debug(self, index: int, answer: str, program: str, verdict: Verdict) -> None:
        if self.settings.debug_dir is None:
            return
        folder = self.settings.debug_dir / re.sub(r"[^A-Za-z0-9_.-]", "_", self.problem.task_id)
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{self.mode.value}_attempt_{index + 1:03d}"
        (folder / f"{stem}_raw.txt").write_text(answer, encoding="utf-8", errors="replace")
        (folder / f"{stem}_program.py").write_text(program, encoding="utf-8", errors="replace")
        (folder / f"{stem}_verdict.json").write_text(json.dumps(verdict.to_dict(), indent=2, default=str))


def _attempt_record(
    task_id: str, mode: Mode, index: int, program: str, verdict: Verdict, completion: Completion
) -> AttemptRecord:
    return AttemptRecord(
        task_id=task_id,
        mode=mode,
        index=index,
        status=verdict.status,
        passed=verdict.passed,
        base_passed=verdict.base_passed,
        tests_passed=verdict.tests_passed,
        tests_total=verdict.tests_total,
        tests_run=verdict.tests_run,
        failed_tests=list(verdict.failed_tests),
        error=_bounded(verdict.error),
        finish_reason=completion.finish_reason,
        mechanism=verdict.mechanism,
        program=program,
        failing_input=verdict.failing_input,
        expected=verdict.expected,
        got=verdict.got,
        traceback=verdict.traceback,
        test_seconds=verdict.duration,
    )


def _bounded(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= MAX_ERROR else text[:MAX_ERROR] + f"...({len(text)} chars)"
