"""A koderz subprocess for a test: the environment it gets (the user's own settings left out), and
the command line itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without API keys, tracking URIs or HYDRA_FULL_ERROR, plus ``extra``."""
    drop = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "HYDRA_FULL_ERROR", "MLFLOW_", "KODERZ_MLFLOW")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(drop)}, **extra}


def run_koderz(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The real command line ``python -m koderz ARGS`` in ``cwd``, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "koderz", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
