"""The one async model interface every phase (spec, attempts, reviews) uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from koderz.datasets.problem import Problem

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@dataclass(frozen=True)
class Usage:
    """Token usage of one call."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
        )


@dataclass(frozen=True)
class Completion:
    """What a model call returns: the text, its usage and how long it took."""

    text: str
    usage: Usage = field(default_factory=Usage)
    latency: float = 0.0  # seconds, wall clock, including retries
    model: str = ""  # the model name that answered
    finish_reason: str | None = None  # the server's, e.g. "stop" or "length" (the answer was cut)

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


@dataclass(frozen=True)
class CallContext:
    """Who is calling and why; built-in models (reference, replay) need it.

    ``phase`` is one of ``spec``, ``attempt``, ``checkpoint``; ``sample_index`` is the
    0-based index of the sample (zero-shot) or iteration (iterative) within the task.
    """

    problem: Problem
    phase: str
    sample_index: int = 0


class WritesAnswers:
    """Capabilities of a model that writes a fresh answer to each prompt: any number of samples,
    answers in prose with code to extract (every provider except replay)."""

    answers_programs = False

    def sample_limit(self, task_id: str) -> int | None:
        return None


@runtime_checkable
class ModelClient(Protocol):
    """An async chat model. Implementations must not block the event loop."""

    name: str
    answers_programs: bool  # answers are whole programs (no code extraction), e.g. replayed samples

    def sample_limit(self, task_id: str) -> int | None:
        """How many different samples the model can give for a task (None: any number)."""
        ...

    async def complete(self, messages: list[Message], context: CallContext) -> Completion:
        """Answer ``messages``; raise ``koderz.errors.ModelError`` after retries fail."""
        ...

    async def preflight(self) -> None:
        """Check key, endpoint and model before the first problem; raise ModelError."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
