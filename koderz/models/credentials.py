"""API keys: where a model's key comes from, checked without any network call or SDK import."""

from __future__ import annotations

import os
from typing import Protocol

from koderz.errors import ModelErrorKind
from koderz.models.failure import model_error

DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
KEYED_PROVIDERS = frozenset({"openai"})  # providers that send ``api_key_env``'s key
NO_KEY = "no-key-needed"  # sent when api_key_env is null (self-hosted servers)


class Keyed(Protocol):
    """What the key lookup reads of a model config (a ModelConfig or its DictConfig)."""

    provider: str
    name: str
    base_url: str | None
    api_key_env: str | None


def openai_url(cfg: Keyed) -> str:
    """The endpoint an OpenAI-compatible model calls (the SDK falls back to OPENAI_BASE_URL too)."""
    return (cfg.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_URL).rstrip("/")


def api_key(cfg: Keyed) -> str:
    """The key to send: the value of ``$api_key_env``, or NO_KEY when none is configured.

    Raises ModelError(kind=missing_key) when the variable is named but unset or empty.
    """
    env = cfg.api_key_env
    if not env:
        return NO_KEY
    key = os.environ.get(env, "").strip()
    if not key:
        raise model_error(
            cfg.name,
            openai_url(cfg),
            f"no API key: environment variable {env} is not set; export {env}=<your key> "
            "(or set model.api_key_env to the variable that holds it)",
            ModelErrorKind.MISSING_KEY,
        )
    return key


def check_credentials(cfg: Keyed) -> None:
    """Raise ModelError(kind=missing_key) if ``cfg``'s provider needs a key that is not set.

    An environment lookup only: call it first thing, before any network or SDK work.
    """
    if cfg.provider in KEYED_PROVIDERS:
        api_key(cfg)
