"""The prefill detector on realistic answers: continued (C++ llama-server, vLLM) and restarted
(llama-cpp-python's chat template closes the assistant turn)."""

from __future__ import annotations

import pytest

from koderz.models.prefill import continues
from koderz.prompts import PromptStyle
from koderz.vocab import Protocol

PREFILL = PromptStyle(protocol=Protocol.EVALPLUS).prefill
CODE = "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1 :])\n"

CONTINUED = {
    "code then the closing fence": CODE + "```\n",
    "code, closing fence, then prose": CODE + "```\n\nThis function compares every pair of numbers.\n",
    "code, closing fence, then a usage block": CODE
    + "```\n\nExample:\n```python\nprint(has_close_elements([1.0, 2.0], 0.5))\n```\n",
    "cut at the token limit (no fence)": CODE[:60],
    "code alone": CODE,
}
RESTARTED = {
    "a new python block": "```python\n" + CODE + "```\n",
    "prose then a new python block": "Here is the solution:\n\n```python\n" + CODE + "```\nIt checks each pair.",
    "prose then a bare block": "Sure! Below is the function.\n```\n" + CODE + "```\n",
    "a bare block at the start": "\n```\n" + CODE + "```\n",
    "the prefix restated": PREFILL + CODE + "```\n",
    "a py tag with spaces": "  ``` py\n" + CODE + "```",
}


@pytest.mark.parametrize("answer", CONTINUED.values(), ids=CONTINUED.keys())
def test_an_answer_that_continues_the_open_fence_counts_as_continued(answer: str) -> None:
    assert continues(PREFILL, answer)


@pytest.mark.parametrize("answer", RESTARTED.values(), ids=RESTARTED.keys())
def test_an_answer_that_opens_its_own_block_or_restates_the_prefix_did_not_continue(answer: str) -> None:
    assert not continues(PREFILL, answer)


def test_without_a_prefill_every_answer_counts_as_continued() -> None:
    assert continues("", RESTARTED["a new python block"])


def test_a_huge_head_is_not_parsed_in_the_parent() -> None:
    head = "x = 1\n" * 10_000  # beyond the probe limit: taken as code, not parsed
    assert continues(PREFILL, head + "```\n```python\nprint(1)\n```\n")
