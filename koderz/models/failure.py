"""One-line ModelError messages: which model, which endpoint, what happened, what to do."""

from __future__ import annotations

from koderz.errors import ModelError

MAX_DETAIL = 200


def brief(text: object) -> str:
    """First line of ``text``, shortened to MAX_DETAIL characters."""
    line = (str(text).strip().splitlines() or [""])[0]
    return line if len(line) <= MAX_DETAIL else line[: MAX_DETAIL - 3] + "..."


def model_error(model: str, endpoint: str, what: str) -> ModelError:
    """``model NAME at ENDPOINT: WHAT`` as one line (``what`` keeps its advice; details go via brief)."""
    return ModelError(f"model {model} at {endpoint}: {' '.join(what.split())}")
