"""The one schema for the ``model`` config group (every provider's keys)."""

from __future__ import annotations

from dataclasses import dataclass

PROVIDERS = ("openai", "ollama", "reference", "replay")
TIERS = ("local", "small_frontier", "frontier", "builtin")
MAX_TOKENS_PARAMS = ("max_tokens", "max_completion_tokens")
# the settings that decide a model's answers (a cached result or a reused spec must match them all)
MODEL_KEYS = ("provider", "name", "base_url", "host", "max_tokens", "temperature", "seed", "num_ctx")


@dataclass
class ModelConfig:
    """One model: which provider serves it, where, with what settings, at what price.

    Prices are USD per million tokens. ``price_cached_input`` = None means cached input
    tokens cost the same as other input tokens. Keys a provider does not use are ignored
    (``host``/``num_ctx``/``keep_alive`` are Ollama's, ``base_url``/``api_key_env``/
    ``max_tokens_param`` OpenAI's, ``samples`` the replay model's).
    """

    provider: str = "openai"
    name: str = "???"
    tier: str = "frontier"
    price_input: float = 0.0
    price_output: float = 0.0
    price_cached_input: float | None = None
    # OpenAI-compatible endpoints
    base_url: str | None = None  # None = the SDK default (api.openai.com)
    # A yaml ``???`` cannot make base_url mandatory (a merge keeps the schema's None),
    # so files for self-hosted servers say so explicitly and build_model checks it.
    base_url_required: bool = False
    api_key_env: str | None = "OPENAI_API_KEY"  # None = the server needs no key
    max_tokens_param: str = "max_tokens"  # gpt-5*/o-series want max_completion_tokens
    # Ollama
    host: str | None = None  # None = OLLAMA_HOST or http://localhost:11434
    num_ctx: int | None = 5120
    keep_alive: str | None = None  # e.g. "10m"; None = the server default
    # sampling and transport (all providers)
    max_tokens: int | None = None
    temperature: float | None = None  # None = the model's default
    seed: int | None = None
    timeout: float = 600.0  # seconds per HTTP request
    max_retries: int = 3
    retry_backoff: float = 0.5  # first backoff delay in seconds (doubles, capped at 8 s)
    # the server (provider + URL), shared by every model on it: the smallest limit and failure
    # count and the longest wait among those models apply
    max_concurrency: int | None = None  # requests in flight at once; None = unlimited (hosted APIs)
    breaker_failures: int = 3  # connection failures in a row that pause calls to the server
    breaker_wait: float = 90.0  # seconds to probe a paused server before its calls fail (endpoint_down)
    # replay
    samples: str | None = None  # path to a JSONL of samples (task_id, solution)
