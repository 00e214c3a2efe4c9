"""The environment a test hands to a koderz subprocess: the user's own settings left out."""

from __future__ import annotations

import os


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without API keys, tracking URIs or HYDRA_FULL_ERROR, plus ``extra``."""
    drop = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "HYDRA_FULL_ERROR", "MLFLOW_", "KODERZ_MLFLOW")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(drop)}, **extra}
