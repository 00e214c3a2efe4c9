"""The one async model interface every phase (spec, attempts, reviews) uses."""

from __future__ import annotations

from dataclasses import astuple, dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from koderz.datasets.problem import Problem
from koderz.vocab import Phase

if TYPE_CHECKING:
    from koderz.models.endpoint import Endpoint

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@dataclass(frozen=True)
class Usage:
    """Token usage of one call."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True)
class Completion:
    """What a model call returns: the text, its usage, how long it took and why it stopped."""

    text: str
    usage: Usage = field(default_factory=Usage)
    latency: float = 0.0  # seconds, wall clock: requests and retry backoff (not ``queued``)
    model: str = ""  # the model name that answered
    # why generation stopped, as the server says: "stop", "length" (hit max_tokens or the
    # context), "content_filter", "tool_calls"...; None = not reported (built-in models)
    finish_reason: str | None = None
    queued: float = 0.0  # seconds spent waiting for an endpoint slot or a paused (open) breaker
    # seconds the server says it spent on the answer (llama.cpp ``timings``, OpenAI's
    # ``openai-processing-ms`` header, Ollama's eval durations); None = it did not say
    server_time: float | None = None

    @property
    def truncated(self) -> bool:
        """The answer was cut off at the token limit, so its code may be incomplete."""
        return self.finish_reason == "length"


@dataclass(frozen=True)
class CallContext:
    """Who is calling and why; built-in models (reference, replay) need it.

    ``phase`` is a model call's phase (``Phase.SPEC``, ``GENERATE``, ``REVIEW``); ``sample_index`` is the
    0-based index of the sample (zero-shot) or iteration (iterative) within the task.
    """

    problem: Problem
    phase: Phase
    sample_index: int = 0


class WritesAnswers:
    """Defaults of a model that writes a fresh answer to each prompt: any number of samples,
    answers in prose with code to extract, no weights digest, nothing to check or release
    (pooled SDK clients are closed by ``ClientPool.aclose``)."""

    answers_programs = False

    def sample_limit(self, task_id: str) -> int | None:
        return None

    async def weights(self) -> str | None:
        return None

    async def preflight(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


@runtime_checkable
class ModelClient(Protocol):
    """An async chat model. Implementations must not block the event loop.

    ``endpoint`` is the server it calls (breaker state, concurrency), shared with every other
    model on that server; None for built-in models that call nothing.
    """

    name: str
    endpoint: Endpoint | None
    answers_programs: bool  # answers are whole programs (no code extraction), e.g. replayed samples

    def sample_limit(self, task_id: str) -> int | None:
        """How many different samples the model can give for a task (None: any number)."""
        ...

    async def complete(self, messages: list[Message], context: CallContext) -> Completion:
        """Answer ``messages``; raise ``koderz.errors.ModelError`` after retries fail."""
        ...

    async def weights(self) -> str | None:
        """The digest of the weights the server serves under this name (Ollama's); None when it
        does not say. The result cache keys a local server's answers by it."""
        ...

    async def preflight(self) -> None:
        """Check key, endpoint and model before the first problem; raise ModelError.

        Prefer ``koderz.models.preflight.preflight_all``: once per distinct endpoint and model.
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
