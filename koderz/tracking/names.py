"""Every name koderz gives things in MLflow: tags and their values, metrics, params, artifacts.

One table, so the logger, the sweep callback, the traces and the tests spell them alike.
"""

from __future__ import annotations

from enum import StrEnum


class Tag(StrEnum):
    """Run and trace tags (``mlflow.*`` ones are MLflow's own)."""

    VERSION = "koderz.version"
    GIT_COMMIT = "koderz.git_commit"
    MODEL = "koderz.model"
    MODE = "koderz.mode"
    DATASET = "koderz.dataset"
    DATASET_RELEASE = "koderz.dataset_release"  # a benchmark's release (BigCodeBench: hub split or sha256:...)
    PROMPT = "koderz.prompt"
    SPEC_MODEL = "koderz.spec_model"
    CHECKPOINT_MODEL = "koderz.checkpoint_model"
    RUN_DIR = "koderz.run_dir"
    RUN_ID = "koderz.run_id"
    OVERRIDES = "koderz.overrides"
    STATUS = "koderz.status"  # a RunStatus
    TRACKING = "koderz.tracking"  # a TrackingState
    TRACKING_STOPPED = "koderz.tracking_stopped"  # why logging stopped
    INTERRUPTED = "koderz.interrupted"  # "true"
    SWEEP = "koderz.sweep"  # "parent" on a sweep's parent run
    SWEEP_ID = "koderz.sweep_id"
    JOB_NUM = "koderz.job_num"
    VARIANT = "koderz.variant"  # the overrides a sweep job varies
    MERGED_FROM = "koderz.merged_from"
    CONTAINMENT = "koderz.containment"  # the weakest sandbox mechanism any verdict was reached under
    TASK_ID = "koderz.task_id"  # trace tags
    PASSED = "koderz.passed"
    MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"
    MLFLOW_PARENT_RUN_ID = "mlflow.parentRunId"
    MLFLOW_RUN_NAME = "mlflow.runName"
    MLFLOW_TRACE_NAME = "mlflow.traceName"


class RunStatus(StrEnum):
    """Values of ``Tag.STATUS``."""

    RUNNING = "running"
    COMPLETE = "complete"
    UNANSWERED = "unanswered"
    INTERRUPTED = "interrupted"


class TrackingState(StrEnum):
    """Values of ``Tag.TRACKING``: how far the MLflow run holds the run folder."""

    LIVE = "live"
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"


class MlflowStatus(StrEnum):
    """MLflow's own run statuses that koderz sets."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    KILLED = "KILLED"


class Metric(StrEnum):
    """Metrics with a fixed name; ``Prefix`` names the families."""

    PASS_RATE = "pass_rate"
    PASSED = "passed"
    ANSWERED = "answered"
    UNANSWERED = "unanswered"
    PROBLEMS = "problems"
    COST_USD = "cost_usd"
    DURATION = "duration_s"
    TOKENS_INPUT = "tokens.input"
    TOKENS_OUTPUT = "tokens.output"
    TOKENS_CACHED_INPUT = "tokens.cached_input"
    ATTEMPTS_MEAN = "attempts.mean"
    ATTEMPTS_TOTAL = "attempts.total"
    THROUGHPUT = "run.throughput"
    CACHED = "run.cached"
    NOT_RUN = "run.not_run"
    TRUNCATED = "run.truncated"
    PREFILL_IGNORED = "run.prefill_ignored"  # answers that did not continue the prefill
    PREFILL_CONTINUED = "run.prefill_continued"  # the start-up probe: 1 the server continued, 0 not
    FRONTIER_ESTIMATE = "cost.frontier_estimate"
    SAVINGS = "cost.savings"
    SAVED_BY_CACHE = "cost.saved_by_cache"
    PASS_RATE_BASE = "pass_rate.base"
    PASS_RATE_CI_LOW = "pass_rate.ci_low"  # the 95% interval (also <mode>/pass_rate.ci_low, pass_rate.base.ci_low)
    PASS_RATE_CI_HIGH = "pass_rate.ci_high"
    SAMPLES_PER_TASK = "run.samples_per_task"
    MEMORY_REUSE = "memory.reuse"  # 1 when specs may be recalled from earlier runs
    MEMORY_SPECS_RECALLED = "memory.specs_recalled"
    MEMORY_SPEC_RUNS = "memory.spec_runs"  # how many runs wrote the recalled specs
    IMPROVEMENT = "comparative.improvement"  # a comparative run: iterative - zero_shot pass rate
    CUMULATIVE_PASS_RATE = "cumulative_pass_rate"  # one step per finished problem
    SOLVED_WITHIN = "solved_within_iterations"  # one step per iteration
    WORKER_READY = "timing.tracking.worker_ready"
    FLUSH = "timing.tracking.flush"
    # a sweep's parent run
    CHILDREN = "children"
    BEST_PASS_RATE = "best_pass_rate"
    MIN_COST = "min_cost"
    TOTAL_COST = "total_cost"


class Prefix(StrEnum):
    """Families of metrics: the prefix, then a name from the run's records."""

    TIMING = "timing."
    COST_TIER = "cost.tier."
    COST_PHASE = "cost.phase."


class Artifact(StrEnum):
    PROBLEM_TABLE = "problems.json"
    SWEEP_TABLE = "sweep_summary.json"
    FIGURES = "figures/"


# params: the flattened config, less these key prefixes (they never tell two runs apart) ...
NOISE_PARAMS = ("tracking.", "timing.", "resume", "debug")
# ... and less operational keys, except these (concurrency shapes the timing figures)
KEPT_PARAMS = ("concurrency",)
BASELINE_PARAMS = ("baseline_model.name", "baseline_model.price_")  # the baseline only prices an estimate
