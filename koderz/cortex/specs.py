"""Which stored spec may stand in for a new one: the tag naming a spec's origin.

A spec is reused only when it came from the same spec model with the same
answer-deciding settings (``models.config.MODEL_KEYS``: provider, name, endpoint,
temperature, seed, ...) and the exact same prompt, so a reused spec means what a new
one would. Specs are stored and recalled with this tag.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from koderz.models.config import MODEL_KEYS


def spec_tag(model: Any, messages: list[Any]) -> str:
    """``spec-origin:<hash>`` of the spec model's settings (a ``ModelConfig``) and the prompt messages."""
    origin = {"model": {key: getattr(model, key, None) for key in MODEL_KEYS}, "messages": messages}
    digest = hashlib.sha256(json.dumps(origin, sort_keys=True, default=str).encode()).hexdigest()
    return f"spec-origin:{digest[:32]}"
