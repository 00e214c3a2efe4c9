"""One-line ModelError messages: which model, which endpoint, what happened, what to do."""

from __future__ import annotations

from collections.abc import Sequence

from koderz.errors import ModelError, ModelErrorKind

MAX_DETAIL = 200
MAX_LISTED = 8  # model ids named in an unknown_model message


def brief(text: object) -> str:
    """First line of ``text``, shortened to MAX_DETAIL characters."""
    line = (str(text).strip().splitlines() or [""])[0]
    return line if len(line) <= MAX_DETAIL else line[: MAX_DETAIL - 3] + "..."


def listed(ids: Sequence[str]) -> str:
    """``a, b, c`` for a few ids; ``a, b, ... (+N more)`` past MAX_LISTED."""
    shown = ", ".join(brief(i) for i in ids[:MAX_LISTED])
    extra = len(ids) - MAX_LISTED
    return f"{shown}, ... (+{extra} more)" if extra > 0 else shown


def model_error(model: str, endpoint: str, what: str, kind: ModelErrorKind = ModelErrorKind.OTHER) -> ModelError:
    """``model NAME at ENDPOINT: WHAT`` as one line (``what`` keeps its advice; details go via brief)."""
    return ModelError(f"model {model} at {endpoint}: {' '.join(what.split())}", kind)
