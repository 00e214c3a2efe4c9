"""``Plan``: the composed config made typed and validated, as every component reads its own part."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from koderz.config import CODER, CODER_ROLE, RunConfig, typed, validate
from koderz.errors import ConfigError
from koderz.evaluators import EVALUATORS, DatasetKeys, Evaluator
from koderz.models.config import ModelConfig
from koderz.problems import library_paths
from koderz.prompts import PromptStyle
from koderz.records import Roles, RunFolder
from koderz.sandbox.sandbox import SandboxConfig
from koderz.vocab import Detail, Mode, Protocol


@dataclass(frozen=True)
class Plan:
    """The run as every component sees it: typed, validated, with the helper roles that follow the
    coder (``coder``) resolved to its model, the run-level temperature and seed applied to each
    role's model, and the roles that take no part left out."""

    config: RunConfig
    mode: Mode
    coder: ModelConfig
    spec_writer: ModelConfig | None  # None: spec.enabled=false
    reviewer: ModelConfig | None  # None: no feedback loop, or checkpoints.enabled=false
    baseline: ModelConfig
    sandbox: SandboxConfig
    prompt: PromptStyle

    @classmethod
    def read(cls, folder: RunFolder) -> Plan:
        """The plan of the run in ``folder``, typed from its saved config; ``ConfigError`` naming the
        folder when that config does not fit this koderz (a key it no longer knows, a bad value)."""
        saved = folder.read_config()
        try:
            return cls.build(typed(RunConfig, saved))
        except (OmegaConfBaseException, ValueError, ConfigError) as exc:
            raise ConfigError(f"{folder.path}: its config.yaml does not fit this koderz: {exc}") from exc

    @classmethod
    def build(cls, cfg: DictConfig | RunConfig) -> Plan:
        config = cfg if isinstance(cfg, RunConfig) else _to_object(cfg)
        validate(config)
        mode = Mode(config.mode.name)
        spec = config.spec.enabled and mode.spec.runs_problems
        reviews = config.checkpoints.enabled and mode.spec.feedback
        settings = config.sandbox
        return cls(
            config=config,
            mode=mode,
            coder=_tuned(config.model, config),
            spec_writer=_tuned(_role(config.spec_model, config), config) if spec else None,
            reviewer=_tuned(_role(config.checkpoint_model, config), config) if reviews else None,
            baseline=_role(config.baseline_model, config),
            sandbox=SandboxConfig(
                max_processes=settings.max_processes,
                isolate=settings.isolate,
                cpu_floor=config.test_timeout,
                cpu_factor=settings.cpu_factor,
                memory_mb=settings.memory_mb,
                fork_server=settings.fork_server,
                containment=settings.containment,
                detail=_detail(Detail(settings.detail), mode),
                library_paths=library_paths(config.dataset),
            ),
            prompt=PromptStyle(protocol=Protocol(config.prompt.protocol), cot=config.prompt.cot),
        )

    @property
    def dataset(self) -> str:
        return self.config.dataset.name

    @property
    def evaluator(self) -> Callable[[SandboxConfig, DatasetKeys], Evaluator]:
        """What judges the dataset's answers (started with ``sandbox`` and the ``dataset.*`` keys)."""
        return EVALUATORS[self.config.dataset.evaluator]

    @property
    def roles(self) -> Roles:
        return Roles(
            coder=self.coder.name,
            spec=self.spec_writer.name if self.spec_writer else None,
            reviewer=self.reviewer.name if self.reviewer else None,
            baseline=self.baseline.name,
        )

    @property
    def prompt_label(self) -> str:
        """The prompt protocol in a few words ("evalplus", "koderz spec+cot"), so no figure is
        mistaken for another protocol's."""
        return self.prompt.label(spec=self.spec_writer is not None)

    @property
    def helper_models(self) -> tuple[ModelConfig, ModelConfig]:
        """The spec and review roles' models whether or not they take part (the speed test times them)."""
        config = self.config
        return _tuned(_role(config.spec_model, config), config), _tuned(_role(config.checkpoint_model, config), config)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data (config.yaml)."""
        data = OmegaConf.to_container(OmegaConf.structured(self.config), resolve=True)
        assert isinstance(data, dict)
        return {str(k): v for k, v in data.items()}


def _detail(detail: Detail, mode: Mode) -> Detail:
    """``auto``: ``full`` where a next prompt reads each verdict's per-test detail (feedback modes:
    ``iterative``, ``comparative``); elsewhere only the verdict is read (``zero_shot``, ``n_samples``,
    replayed samples), and the judge stops at the first failing input (the same verdict:
    docs/sandbox.md)."""
    if detail is not Detail.AUTO:
        return detail
    return Detail.FULL if mode.spec.feedback else Detail.FIRST_FAILURE


def _to_object(cfg: DictConfig) -> RunConfig:
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(plain, dict)
    plain.pop("hydra", None)
    return typed(RunConfig, {str(k): v for k, v in plain.items()})


def _role(model: ModelConfig, config: RunConfig) -> ModelConfig:
    """A helper role's model: when the role says ``coder``, the coder's model with the settings
    given to the role itself (those that differ from ``coder.yaml``) on top."""
    if model.provider != CODER:
        return model
    own = {
        f.name: getattr(model, f.name)
        for f in fields(ModelConfig)
        if getattr(model, f.name) != getattr(CODER_ROLE, f.name)
    }
    return replace(config.model, **own)


def _tuned(model: ModelConfig, config: RunConfig) -> ModelConfig:
    """A role's model with the run-level temperature and seed applied."""
    if config.temperature is not None:
        model = replace(model, temperature=config.temperature)
    if config.seed is not None:
        model = replace(model, seed=config.seed)
    return model
