"""The one vocabulary of a run: modes (what runs), phases (what is timed), statuses (what came out),
prompt protocols (whose prompts the coder gets).

Every module asks these tables instead of comparing strings: which parts a mode runs per
problem and which result is its headline; which timing category, cost-ledger key and
MLflow span type a phase has; whether a status is a verdict on the candidate or says that
no verdict was reached (and whose fault that was).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    """``mode.name`` in the config."""

    ZERO_SHOT = "zero_shot"
    ITERATIVE = "iterative"
    COMPARATIVE = "comparative"
    SPEED = "speed"

    @property
    def spec(self) -> ModeSpec:
        return MODES[self]


@dataclass(frozen=True)
class ModeSpec:
    """What a mode does.

    ``parts`` are the per-problem runs (comparative runs both); ``headline`` is the part whose
    result is the run's pass rate; ``feedback`` means attempts see the previous verdict and the
    reviewer takes part; ``samples`` means ``n_samples`` answers per task (pass@k).
    """

    parts: tuple[Mode, ...]
    headline: Mode | None
    feedback: bool
    samples: bool

    @property
    def runs_problems(self) -> bool:
        return bool(self.parts)


MODES: dict[Mode, ModeSpec] = {
    Mode.ZERO_SHOT: ModeSpec(parts=(Mode.ZERO_SHOT,), headline=Mode.ZERO_SHOT, feedback=False, samples=True),
    Mode.ITERATIVE: ModeSpec(parts=(Mode.ITERATIVE,), headline=Mode.ITERATIVE, feedback=True, samples=False),
    Mode.COMPARATIVE: ModeSpec(
        parts=(Mode.ZERO_SHOT, Mode.ITERATIVE), headline=Mode.ITERATIVE, feedback=True, samples=True
    ),
    Mode.SPEED: ModeSpec(parts=(), headline=None, feedback=False, samples=False),
}


class Category(StrEnum):
    """Timing categories: the original report's names (cortex, iteration, spec, checkpoint, test)
    plus the run's own start-up, tracking and shutdown."""

    SPEC = "spec"
    ITERATION = "iteration"  # the coder's model calls
    CHECKPOINT = "checkpoint"
    TEST = "test"  # the sandbox
    QUEUE = "queue"  # waiting for a model server's slot (max_concurrency) or a paused breaker
    CORTEX = "cortex"  # the memory store
    STARTUP = "startup"
    TRACKING = "tracking"
    SHUTDOWN = "shutdown"


MODEL_CATEGORIES = (Category.SPEC, Category.ITERATION, Category.CHECKPOINT)


@dataclass(frozen=True)
class PhaseSpec:
    category: Category
    ledger: str | None  # the cost-ledger key of a model call, None for other phases
    span_type: str  # MLflow span type


class Phase(StrEnum):
    """Timed phases: span names in traces and in the timing report."""

    SPEC = "spec_generation"
    GENERATE = "iteration_generate"
    TEST = "iteration_test"
    REVIEW = "checkpoint_review"
    QUEUE = "endpoint_queue"  # a model call waiting for its server, before the call proper
    MEMORY_READ = "cortex_recall"
    MEMORY_WRITE = "cortex_remember"
    MEMORY_SESSION_START = "cortex_start_session"
    MEMORY_SESSION_END = "cortex_end_session"
    MEMORY_OPEN = "cortex_open"
    MEMORY_CLOSE = "cortex_close"
    LAUNCH = "launch"  # interpreter start, imports, config composition: process start to the run's start
    DATASET_LOAD = "dataset_load"
    IMPORTS = "imports"
    PREFLIGHT = "preflight"
    SANDBOX_START = "sandbox_start"
    TRACKING_START = "tracking_start"
    TRACKING_FLUSH = "tracking_flush"
    SANDBOX_STOP = "sandbox_stop"

    @property
    def spec(self) -> PhaseSpec:
        return PHASES[self]

    @property
    def category(self) -> Category:
        return PHASES[self].category


PHASES: dict[Phase, PhaseSpec] = {
    Phase.SPEC: PhaseSpec(Category.SPEC, "spec", "LLM"),
    Phase.GENERATE: PhaseSpec(Category.ITERATION, "attempt", "LLM"),
    Phase.REVIEW: PhaseSpec(Category.CHECKPOINT, "checkpoint", "LLM"),
    Phase.TEST: PhaseSpec(Category.TEST, None, "EVALUATOR"),
    Phase.QUEUE: PhaseSpec(Category.QUEUE, None, "UNKNOWN"),
    Phase.MEMORY_READ: PhaseSpec(Category.CORTEX, None, "RETRIEVER"),
    Phase.MEMORY_WRITE: PhaseSpec(Category.CORTEX, None, "MEMORY"),
    Phase.MEMORY_SESSION_START: PhaseSpec(Category.CORTEX, None, "MEMORY"),
    Phase.MEMORY_SESSION_END: PhaseSpec(Category.CORTEX, None, "MEMORY"),
    Phase.MEMORY_OPEN: PhaseSpec(Category.STARTUP, None, "MEMORY"),
    Phase.MEMORY_CLOSE: PhaseSpec(Category.SHUTDOWN, None, "MEMORY"),
    Phase.LAUNCH: PhaseSpec(Category.STARTUP, None, "UNKNOWN"),
    Phase.DATASET_LOAD: PhaseSpec(Category.STARTUP, None, "UNKNOWN"),
    Phase.IMPORTS: PhaseSpec(Category.STARTUP, None, "UNKNOWN"),
    Phase.PREFLIGHT: PhaseSpec(Category.STARTUP, None, "UNKNOWN"),
    Phase.SANDBOX_START: PhaseSpec(Category.STARTUP, None, "UNKNOWN"),
    Phase.TRACKING_START: PhaseSpec(Category.TRACKING, None, "UNKNOWN"),
    Phase.TRACKING_FLUSH: PhaseSpec(Category.TRACKING, None, "UNKNOWN"),
    Phase.SANDBOX_STOP: PhaseSpec(Category.SHUTDOWN, None, "UNKNOWN"),
}


class Status(StrEnum):
    """A problem's or an attempt's outcome.

    The first six are verdicts on the candidate program (decided by the sandbox); the rest
    say that no verdict was reached: the model gave no answer (connection, HTTP, rate limit,
    a dead endpoint), koderz itself failed, or the run was interrupted first.
    """

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # the candidate raised, or sent an answer it may not send
    TIMEOUT = "timeout"
    MEMORY = "memory"
    KILLED = "killed"
    MODEL_ERROR = "model_error"
    HARNESS_ERROR = "harness_error"
    INTERRUPTED = "interrupted"

    @property
    def is_verdict(self) -> bool:
        return self in VERDICTS


VERDICTS = frozenset({Status.PASSED, Status.FAILED, Status.ERROR, Status.TIMEOUT, Status.MEMORY, Status.KILLED})


class PartStatus(StrEnum):
    """How one stretch of work on a run (a start or a resume, ``run.json``'s parts) ended."""

    NEW = "new"  # no part yet (``RunState.status`` of a run that never started)
    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"  # Ctrl-C
    STOPPED = "stopped"  # problems left unrun for a reason (a dead endpoint)
    KILLED = "killed"  # the process died; found so by the next resume


class CacheSetting(StrEnum):
    """``cache``: whether stored problem results are served (``koderz.result_cache``)."""

    AUTO = "auto"  # hosted models and local servers that give their weights' digest; no sampled runs
    ON = "true"  # every non-built-in model, sampled runs too (the user asked)
    OFF = "false"

    @classmethod
    def of(cls, value: object) -> CacheSetting:
        """The setting from a config value (``cache=true`` reaches the schema's str as ``"True"``)."""
        return cls(str(value).lower())


class Protocol(StrEnum):
    """``prompt.protocol``: whose prompts the coder gets."""

    KODERZ = "koderz"  # koderz's workflow: spec, chain-of-thought, feedback, reviews
    EVALPLUS = "evalplus"  # EvalPlus's leaderboard prompt for chat models: zero-shot, no spec, no CoT
    BENCHMARK = "benchmark"  # BigCodeBench's / LiveCodeBench's own generator prompt: zero-shot, no spec, no CoT

    @classmethod
    def of_label(cls, label: str) -> Protocol | None:
        """The protocol a ``PromptStyle.label`` names (its first word); None for another text."""
        word = label.split(" ", 1)[0]
        return cls(word) if word in set(cls) else None


class IntervalMethod(StrEnum):
    """How a 95% confidence interval of a rate was computed (``koderz.stats``)."""

    WILSON = "wilson"  # one sample per task: the Wilson score interval
    BOOTSTRAP = "bootstrap"  # several samples per task: percentile bootstrap over tasks
    PAIRED_BOOTSTRAP = "paired bootstrap"  # a difference between two runs on the same tasks


class Detail(StrEnum):
    """``sandbox.detail``: how much of an answer the sandbox judges once its verdict is known."""

    AUTO = "auto"  # full where a next prompt reads the detail (feedback modes), else first_failure
    FULL = "full"  # every input, also after the first failure (``tests_passed`` counts them all)
    # stop at the first failing input, as EvalPlus does: the same verdict; ``tests_run`` counts the
    # inputs judged up to that failure, ``tests_passed`` those that passed before it
    FIRST_FAILURE = "first_failure"
