"""The config schema: dataclasses registered in Hydra's ConfigStore, and their validation.

Every key of ``koderz/conf/`` is typed here, and every default is stated here once: group files
state only what differs. A wrong type fails at composition; a well-typed but meaningless value
(``concurrency=0``, ``start=5 end=2``) is rejected by :func:`validate` with a ``ConfigError``
naming the key and the value. ``koderz.plan`` turns a composed config into the typed plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from koderz.cortex.config import CortexConfig
from koderz.datasets.benchmarks import BENCHMARKS
from koderz.errors import ConfigError
from koderz.evaluators import EVALUATORS
from koderz.models.config import ModelConfig
from koderz.vocab import CacheSetting, Detail, Mode, Protocol

T = TypeVar("T")

# A helper role (spec_model, checkpoint_model, baseline_model) whose provider is CODER uses the
# coder's model as configured (conf/model/coder.yaml, the default of the spec and review roles),
# with any setting given to the role itself on top (spec_model.temperature=0.7).
CODER = "coder"
CODER_ROLE = ModelConfig(provider=CODER, name=CODER, tier="builtin", api_key_env=None)  # conf/model/coder.yaml


@dataclass
class DatasetConfig:
    name: str = (
        "humaneval"  # humaneval | humaneval_plus | humaneval_plus_mini | mbpp_plus | bigcodebench | livecodebench
    )
    evaluator: str = "humaneval"  # how answers are judged: a name in koderz.evaluators.EVALUATORS
    # bigcodebench / livecodebench only (koderz/problems.py)
    path: str | None = None  # a local file (JSONL, JSONL.gz, parquet) or saved `datasets` folder; unset = the hub
    subset: str = "full"  # bigcodebench: full | hard
    split: str = "complete"  # bigcodebench: complete | instruct
    version: str | None = None  # the release (bigcodebench: hub split, default v0.1.4; livecodebench: split)
    date_from: str | None = None  # livecodebench: contest date window, YYYY-MM-DD, both ends included
    date_to: str | None = None
    # bigcodebench: the tasks' libraries, a venv or a site-packages folder bound read-only into the
    # sandbox; unset = this interpreter's (pip install 'koderz[bigcodebench]')
    libraries: str | None = None
    skip_unrunnable: bool = False  # bigcodebench: leave out (not_run) tasks whose libs are missing instead of exit 2
    time_limit: float = 240.0  # bigcodebench: seconds for a task's whole suite (bigcodebench's TIMEOUT_LIMIT)


@dataclass
class ModeConfig:
    name: str = Mode.ZERO_SHOT.value  # zero_shot | iterative | comparative | speed


@dataclass
class SpecConfig:
    enabled: bool = True  # a spec_model writes a specification first (the original workflow)
    reuse: bool = True  # take the latest stored spec from Cortex made by the same spec model, settings and prompt


@dataclass
class CheckpointsConfig:
    enabled: bool = True  # every checkpoint_interval failures the checkpoint_model reviews


@dataclass
class PromptConfig:
    protocol: str = Protocol.KODERZ.value  # koderz | evalplus (EvalPlus's leaderboard prompt; experiment=evalplus)
    cot: bool = True  # koderz protocol: ask the model to reason before the code


@dataclass
class TimingConfig:
    report: bool = False  # log the TIMING BREAKDOWN at the end
    export: str | None = None  # also write the timing JSON to this file


@dataclass
class SandboxSettings:
    """The user-facing sandbox keys (``sandbox.*``); CPU seconds per attempt start at ``test_timeout``."""

    max_processes: int = 0  # simultaneous sandbox processes; 0 = number of CPUs
    isolate: bool = True  # namespaces, private root, uid drop where the OS permits
    memory_mb: int = 1024
    cpu_factor: float = 10.0  # CPU limit = test_timeout + cpu_factor x the canonical's CPU time
    fork_server: bool = True  # fork attempts from a preloaded zygote instead of starting python each time
    containment: str = "auto"  # the strongest isolating one, or insist on: root_namespaces | user_namespaces | bubblewrap | limits_only
    detail: str = "auto"  # full | first_failure (stop at the first failing input); auto: full where feedback reads it


@dataclass
class TrackingConfig:
    enabled: bool = False
    uri: str | None = None  # None = $MLFLOW_TRACKING_URI, else sqlite:///outputs/mlflow.db
    artifact_location: str = "outputs/mlartifacts"  # where a local store keeps artifacts
    experiment: str | None = None  # None = koderz-<dataset>
    traces: bool = True  # one MLflow trace per problem with a span per phase
    figures: bool = True  # pass rate by iteration, time by category, cost vs pass rate
    http_timeout: int = 10  # fail fast when a tracking server is unreachable
    http_retries: int = 0


@dataclass
class SpeedConfig:
    prompts: list[str] = field(
        default_factory=lambda: [
            "Write a Python function that returns the n-th Fibonacci number iteratively.",
            "Write a Python function that checks whether a string is a palindrome, ignoring case.",
            "Write a Python function that merges two sorted lists into one sorted list.",
        ]
    )
    warmup: int = 1
    repeats: int = 1


@dataclass
class RunConfig:
    model: ModelConfig = MISSING  # the coder (conf/model/)
    spec_model: ModelConfig = MISSING  # writes the spec (spec.enabled); coder = the coder's model
    checkpoint_model: ModelConfig = MISSING  # reviews every checkpoint_interval failures; coder = the coder's model
    baseline_model: ModelConfig = MISSING  # prices of the frontier-only cost estimate
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    mode: ModeConfig = field(default_factory=ModeConfig)
    cortex: CortexConfig = field(default_factory=CortexConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    spec: SpecConfig = field(default_factory=SpecConfig)
    checkpoints: CheckpointsConfig = field(default_factory=CheckpointsConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    start: int = 0  # slice of the dataset's task order: [start, end)
    end: int | None = None
    problems: list[str] | None = None  # explicit task ids; wins over start/end
    shard: str | None = None  # "K/N": this job runs every N-th selected problem from the K-th (0-based)
    concurrency: int = 1  # problems at once
    max_iterations: int = 50  # iterative mode: attempts per problem
    checkpoint_interval: int = 5  # iterative mode: a review after this many failed attempts
    n_samples: int = 1  # zero-shot samples per task (pass@k for k <= n)
    seed: int | None = None  # when set, every role model gets this seed
    temperature: float | None = None  # when set, every role model gets this temperature
    test_timeout: float = 3.0  # CPU seconds per attempt at least (scaled up for slow tasks)
    debug: bool = False  # keep raw answers, programs and verdicts under debug/
    # reuse stored results of identical problem runs: auto (hosted models and local servers that
    # give their weights' digest; no sampled runs), true (every non-built-in model), false
    cache: str = "auto"
    resume: str | None = None  # a run folder to finish


def register() -> None:
    """Register the schema as ``koderz_schema`` (config.yaml's first default)."""
    ConfigStore.instance().store(name="koderz_schema", node=RunConfig)


def _require(condition: bool, key: str, value: Any, why: str) -> None:
    if not condition:
        raise ConfigError(f"{key}={value}: {why}")


def shard_of(text: str) -> tuple[int, int]:
    """``"K/N"`` as (K, N) with 0 <= K < N; ConfigError naming the value otherwise."""
    index, _, count = str(text).partition("/")
    try:
        k, n = int(index), int(count)
    except ValueError:
        raise ConfigError(f"shard={text}: write it as K/N, e.g. shard=0/4 (K from 0 to N-1)") from None
    _require(n >= 1 and 0 <= k < n, "shard", text, "needs 0 <= K < N, e.g. shard=0/4 .. shard=3/4")
    return k, n


def typed(schema: type[T], data: Mapping[str, Any]) -> T:
    """Plain data (a run folder's config.yaml, or a group of it) as ``schema``, the schema's
    defaults for what the data leaves out."""
    value = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), dict(data)))
    assert isinstance(value, schema)
    return value


def validate(cfg: RunConfig | DictConfig) -> None:
    """Reject well-typed but meaningless values, one key at a time."""
    _require(cfg.concurrency >= 1, "concurrency", cfg.concurrency, "must be at least 1")
    _require(cfg.max_iterations >= 1, "max_iterations", cfg.max_iterations, "must be at least 1")
    _require(cfg.checkpoint_interval >= 1, "checkpoint_interval", cfg.checkpoint_interval, "must be at least 1")
    _require(cfg.n_samples >= 1, "n_samples", cfg.n_samples, "must be at least 1")
    _require(str(cfg.cache).lower() in set(CacheSetting), "cache", cfg.cache, "choose one of auto, true, false")
    _require(cfg.start >= 0, "start", cfg.start, "must be 0 or more")
    if cfg.end is not None:
        _require(cfg.end > cfg.start, "end", cfg.end, f"must be greater than start={cfg.start}")
    _require(cfg.test_timeout > 0, "test_timeout", cfg.test_timeout, "must be positive")
    _require(cfg.dataset.time_limit > 0, "dataset.time_limit", cfg.dataset.time_limit, "must be positive (seconds)")
    modes = ", ".join(m.value for m in Mode)
    _require(cfg.mode.name in set(Mode), "mode", cfg.mode.name, f"choose one of {modes}")
    evaluators = ", ".join(EVALUATORS)
    _require(
        cfg.dataset.evaluator in EVALUATORS, "dataset.evaluator", cfg.dataset.evaluator, f"choose one of {evaluators}"
    )
    _require(
        cfg.sandbox.max_processes >= 0, "sandbox.max_processes", cfg.sandbox.max_processes, "must be 0 (CPUs) or more"
    )
    _require(cfg.sandbox.memory_mb >= 64, "sandbox.memory_mb", cfg.sandbox.memory_mb, "must be at least 64")
    details = ", ".join(d.value for d in Detail)
    _require(cfg.sandbox.detail in set(Detail), "sandbox.detail", cfg.sandbox.detail, f"choose one of {details}")
    if cfg.temperature is not None:
        _require(cfg.temperature >= 0, "temperature", cfg.temperature, "must be 0 or more")
    if cfg.shard is not None:
        shard_of(cfg.shard)
    why = "stands for the coder's model in a helper role (spec_model=coder); choose a model for the coder"
    _require(cfg.model.provider != CODER, "model", CODER, why)
    _validate_protocol(cfg)
    _validate_reviews(cfg)


def _validate_reviews(cfg: RunConfig | DictConfig) -> None:
    """With feedback and reviews on, a review must be able to happen: one comes after every
    ``checkpoint_interval`` failed attempts, never after the last attempt."""
    if not (cfg.checkpoints.enabled and Mode(cfg.mode.name).spec.feedback):
        return
    _require(
        cfg.checkpoint_interval < cfg.max_iterations,
        "checkpoint_interval",
        cfg.checkpoint_interval,
        f"a review comes after every {cfg.checkpoint_interval} failed attempts, but max_iterations="
        f"{cfg.max_iterations} leaves no room for one; lower checkpoint_interval or set checkpoints.enabled=false",
    )


def _validate_protocol(cfg: RunConfig | DictConfig) -> None:
    """The evalplus and benchmark protocols are a leaderboard's zero-shot prompt: no spec, no
    chain-of-thought, no feedback; benchmark is BigCodeBench's or LiveCodeBench's own."""
    protocols = ", ".join(p.value for p in Protocol)
    _require(cfg.prompt.protocol in set(Protocol), "prompt.protocol", cfg.prompt.protocol, f"choose one of {protocols}")
    protocol = Protocol(cfg.prompt.protocol)
    if protocol is Protocol.KODERZ:
        return
    if protocol is Protocol.BENCHMARK:
        _require(
            cfg.dataset.name in BENCHMARKS,
            "prompt.protocol",
            protocol.value,
            f"is the prompt of {' and '.join(BENCHMARKS)}, not of dataset={cfg.dataset.name}",
        )
        why = (
            "the benchmark's prompt is zero-shot with neither spec nor reasoning (experiment=bigcodebench sets it all)"
        )
    else:
        why = "EvalPlus's prompt is zero-shot with neither spec nor reasoning (experiment=evalplus sets it all)"
    _require(
        cfg.mode.name == Mode.ZERO_SHOT,
        "mode",
        cfg.mode.name,
        f"prompt.protocol={protocol.value} needs mode=zero_shot: {why}",
    )
    _require(
        not cfg.spec.enabled, "spec.enabled", cfg.spec.enabled, f"prompt.protocol={protocol.value} needs false: {why}"
    )
    _require(not cfg.prompt.cot, "prompt.cot", cfg.prompt.cot, f"prompt.protocol={protocol.value} needs false: {why}")
