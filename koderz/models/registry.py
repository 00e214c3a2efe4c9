"""Build the model client named by ``cfg.provider`` (lazy imports: SDKs load only when used)."""

from __future__ import annotations

import importlib

from koderz.errors import ConfigError
from koderz.models.base import ModelClient
from koderz.models.config import MAX_TOKENS_PARAMS, TIERS, ModelConfig
from koderz.models.pool import ClientPool

__all__ = ["ClientPool", "build_model", "provider_module"]

# provider -> "module:class"; network classes take (cfg, pool), built-in ones take (cfg).
PROVIDERS: dict[str, str] = {
    "openai": "koderz.models.openai_client:OpenAIModel",
    "ollama": "koderz.models.ollama_client:OllamaModel",
    "reference": "koderz.models.builtin:ReferenceModel",
    "replay": "koderz.models.builtin:ReplayModel",
}
POOLED = {"openai", "ollama"}


def _check(cfg: ModelConfig) -> None:
    provider_module(cfg.provider)
    if cfg.tier not in TIERS:
        raise ConfigError(f"model.tier={cfg.tier!r} is unknown; choose one of {list(TIERS)}")
    if cfg.max_tokens_param not in MAX_TOKENS_PARAMS:
        raise ConfigError(f"model.max_tokens_param={cfg.max_tokens_param!r}; choose one of {list(MAX_TOKENS_PARAMS)}")
    if cfg.base_url_required and not cfg.base_url:
        raise ConfigError(
            f"model.base_url is required for model {cfg.name!r} (an OpenAI-compatible server); "
            "pass model.base_url=http://HOST:PORT/v1"
        )
    if cfg.max_concurrency is not None and cfg.max_concurrency < 1:
        raise ConfigError(f"model.max_concurrency={cfg.max_concurrency} must be >= 1 (or null = unlimited)")
    if cfg.breaker_failures < 1:
        raise ConfigError(f"model.breaker_failures={cfg.breaker_failures} must be >= 1")
    if cfg.breaker_wait < 0:
        raise ConfigError(f"model.breaker_wait={cfg.breaker_wait} must be >= 0 (seconds)")
    for key in ("price_input", "price_output", "price_cached_input"):
        value = getattr(cfg, key)
        if value is not None and value < 0:
            raise ConfigError(f"model.{key}={value} must be >= 0 (USD per million tokens)")


def provider_module(provider: str) -> str:
    """The module that implements ``provider`` (its SDK import is the slow part of start-up)."""
    if provider not in PROVIDERS:
        raise ConfigError(f"model.provider={provider!r} is unknown; choose one of {sorted(PROVIDERS)}")
    return PROVIDERS[provider].split(":")[0]


def build_model(cfg: ModelConfig, pool: ClientPool) -> ModelClient:
    """The ModelClient for ``cfg``; network providers share SDK clients through ``pool``."""
    _check(cfg)
    module_name, attr = PROVIDERS[cfg.provider].split(":")
    cls = getattr(importlib.import_module(module_name), attr)
    return cls(cfg, pool) if cfg.provider in POOLED else cls(cfg)
