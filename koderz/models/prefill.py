"""Did the server continue a prefilled answer? Read from the answer alone.

A prefill (EvalPlus's response prefix ending in an opened ```python fence) is sent as the start
of the assistant's message. A server that continues it (the C++ ``llama-server``, vLLM, Ollama's
``/api/chat``) returns the code after the open fence, and its first fence line closes that block;
a server whose chat template starts a new turn (llama-cpp-python's server) returns a fresh answer
that restates the prefix or opens a block of its own (``continues`` tells them apart). An answer
with no fence line counts as continued, which a small model may also write in a new turn; so the
run also asks the server once (``server_continues``): a counting prompt whose prefilled answer
stops mid-list, which a continuing server goes on with.
"""

from __future__ import annotations

import ast
import re

from koderz.datasets.problem import Problem
from koderz.errors import ModelError
from koderz.models.base import CallContext, Message, ModelClient
from koderz.vocab import Phase

FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*(\S*)", re.MULTILINE)
PROSE_PROBE_LIMIT = 20_000  # characters of the text before the first fence parsed as Python
PROBE: list[Message] = [
    {"role": "user", "content": "Count from 1 to 10, separated by commas."},
    {"role": "assistant", "content": "1, 2, 3, 4,"},
]
PROBE_NEXT = "5"  # what a continuation starts with; a new turn starts over ("1, 2, ...") or with prose


def continues(prefill: str, answer: str) -> bool:
    """Whether ``answer`` continues ``prefill`` (True when there is no prefill): not when it restates
    the prefill's first line, nor when its first fence line opens a new block (a language tag, or a
    bare fence followed by another one after text that is not Python)."""
    if not prefill:
        return True
    opening = prefill.strip().splitlines()[0].strip()
    if opening and not opening.startswith(("```", "~~~")) and answer.lstrip().startswith(opening):
        return False
    fences = list(FENCE.finditer(answer))
    if not fences:
        return True
    first = fences[0]
    if first.group(2):  # ```python: a new block, not the prefill's closing fence
        return False
    if len(fences) < 2:  # the one bare fence closes the prefill's block
        return True
    return _is_code(answer[: first.start()])


def _is_code(text: str) -> bool:
    """Text that parses as Python with at least one statement (the continued body of a block)."""
    if not text.strip():
        return False
    if len(text) > PROSE_PROBE_LIMIT:
        return True  # too long to parse in the parent: give the answer the benefit of the doubt
    try:
        return bool(ast.parse(text).body)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


async def server_continues(client: ModelClient, problem: Problem) -> bool | None:
    """Whether the server continues a prefilled answer, from one short call (``PROBE``); None when
    the call fails. ``problem`` only names the call in logs."""
    try:
        completion = await client.complete(PROBE, CallContext(problem, Phase.GENERATE))
    except ModelError:
        return None
    return completion.text.lstrip().startswith(PROBE_NEXT)
