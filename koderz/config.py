"""Structured config: dataclass schemas registered in Hydra's ConfigStore, and validation.

Every key of ``conf/`` is typed here, so a wrong type fails at composition; values
that are well-typed but wrong (``concurrency=0``, ``start=5 end=2``) are rejected by
``validate`` with a ``ConfigError`` naming the key and the value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from koderz.cortex.config import CortexConfig
from koderz.errors import ConfigError
from koderz.models.config import ModelConfig

MODES = ("zero_shot", "iterative", "comparative", "speed")


@dataclass
class DatasetConfig:
    name: str = "humaneval"


@dataclass
class ModeConfig:
    name: str = "zero_shot"


@dataclass
class SpecConfig:
    enabled: bool = True  # a spec_model writes a specification first (the original workflow)
    reuse: bool = True  # take the latest stored spec from Cortex made by the same spec model, settings and prompt


@dataclass
class CheckpointsConfig:
    enabled: bool = True  # every checkpoint_interval failures the checkpoint_model reviews


@dataclass
class PromptConfig:
    cot: bool = True  # ask the model to reason before the code


@dataclass
class TimingConfig:
    report: bool = False  # log the TIMING BREAKDOWN at the end
    export: str | None = None  # also write the timing JSON to this file


@dataclass
class CostConfig:
    baseline_model: str = "claude-sonnet-4-5"  # a conf/model/ file: prices for the frontier-only estimate


@dataclass
class SandboxSettings:
    max_processes: int = 0  # simultaneous sandbox processes; 0 = number of CPUs
    isolate: bool = True  # namespaces, private root, uid drop where the OS permits
    memory_mb: int = 1024
    cpu_factor: float = 10.0  # CPU limit = test_timeout + cpu_factor x the canonical's CPU time


@dataclass
class TrackingConfig:
    enabled: bool = False
    uri: str | None = None
    artifact_location: str | None = None
    experiment: str | None = None
    traces: bool = True
    figures: bool = True
    http_timeout: int = 10
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
    model: ModelConfig = MISSING
    spec_model: ModelConfig = MISSING
    checkpoint_model: ModelConfig = MISSING
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    mode: ModeConfig = field(default_factory=ModeConfig)
    cortex: CortexConfig = field(default_factory=CortexConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    spec: SpecConfig = field(default_factory=SpecConfig)
    checkpoints: CheckpointsConfig = field(default_factory=CheckpointsConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    start: int = 0
    end: int | None = None
    problems: list[str] | None = None  # explicit task ids; wins over start/end
    concurrency: int = 1
    max_iterations: int = 50
    checkpoint_interval: int = 5
    n_samples: int = 1
    seed: int | None = None  # overrides every role model's seed when set
    temperature: float | None = None  # overrides every role model's temperature when set
    test_timeout: float = 3.0  # minimum CPU seconds per attempt (scaled up for slow tasks)
    debug: bool = False  # keep raw answers, programs and verdicts per attempt
    cache: bool = True  # reuse stored results of identical problem runs
    resume: str | None = None  # a run folder to finish


def register() -> None:
    """Register the schema as ``koderz_schema`` (config.yaml's first default)."""
    ConfigStore.instance().store(name="koderz_schema", node=RunConfig)


def _require(condition: bool, key: str, value: Any, why: str) -> None:
    if not condition:
        raise ConfigError(f"{key}={value}: {why}")


def validate(cfg: Any) -> None:
    """Reject well-typed but meaningless values, one key at a time."""
    _require(cfg.concurrency >= 1, "concurrency", cfg.concurrency, "must be at least 1")
    _require(cfg.max_iterations >= 1, "max_iterations", cfg.max_iterations, "must be at least 1")
    _require(cfg.checkpoint_interval >= 1, "checkpoint_interval", cfg.checkpoint_interval, "must be at least 1")
    _require(cfg.n_samples >= 1, "n_samples", cfg.n_samples, "must be at least 1")
    _require(cfg.start >= 0, "start", cfg.start, "must be 0 or more")
    if cfg.end is not None:
        _require(cfg.end > cfg.start, "end", cfg.end, f"must be greater than start={cfg.start}")
    _require(cfg.test_timeout > 0, "test_timeout", cfg.test_timeout, "must be positive")
    _require(cfg.mode.name in MODES, "mode", cfg.mode.name, f"choose one of {', '.join(MODES)}")
    _require(
        cfg.sandbox.max_processes >= 0, "sandbox.max_processes", cfg.sandbox.max_processes, "must be 0 (CPUs) or more"
    )
    if cfg.temperature is not None:
        _require(cfg.temperature >= 0, "temperature", cfg.temperature, "must be 0 or more")
