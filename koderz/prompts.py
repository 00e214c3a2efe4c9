"""The messages each phase sends: spec, first attempt, feedback attempt, checkpoint review."""

from __future__ import annotations

from dataclasses import dataclass

from koderz.datasets.problem import Problem
from koderz.models.base import Message
from koderz.sandbox.verdict import Verdict

CODER_SYSTEM = (
    "You are an expert Python programmer. You write correct, self-contained Python 3 code "
    "using only the standard library."
)
ANSWER_FORMAT_COT = (
    "Think through the problem briefly, then give the complete function (with any imports "
    "and helpers it needs) in a single ```python code block."
)
ANSWER_FORMAT_PLAIN = "Answer with only the complete function (with its imports) in a single ```python code block."


@dataclass(frozen=True)
class PromptStyle:
    """How the coder is asked: with chain-of-thought (``prompt.cot``) or code only."""

    cot: bool = True


@dataclass(frozen=True)
class Attempt:
    """What a following prompt needs to know about an earlier attempt."""

    iteration: int
    program: str
    verdict: Verdict
    truncated: bool = False  # the model's answer was cut at its token limit


def _task_text(problem: Problem) -> str:
    return (
        f"Implement the Python function `{problem.entry_point}` described below.\n\n"
        f"```python\n{problem.prompt.strip()}\n```"
    )


def _answer_format(cot: bool) -> str:
    return ANSWER_FORMAT_COT if cot else ANSWER_FORMAT_PLAIN


def spec_messages(problem: Problem) -> list[Message]:
    return [
        {"role": "system", "content": "You are a senior software engineer who writes precise specifications."},
        {
            "role": "user",
            "content": (
                f"{_task_text(problem)}\n\nWrite a concise specification for this function: inputs and "
                "their types, the exact output, edge cases, and an algorithm outline. Do not write code."
            ),
        },
    ]


def attempt_messages(
    problem: Problem,
    style: PromptStyle,
    *,
    spec: str | None = None,
    previous: Attempt | None = None,
    guidance: str | None = None,
) -> list[Message]:
    """The coder's prompt: the task, the spec, the last failure and the latest guidance."""
    parts = [_task_text(problem)]
    if spec:
        parts.append(f"Specification:\n{spec.strip()}")
    if previous is not None:
        if previous.truncated:
            parts.append(
                f"Your previous answer (#{previous.iteration + 1}) was cut off at the token limit before it "
                "ended: keep the answer shorter."
            )
        parts.append(
            f"Your previous attempt (#{previous.iteration + 1}) failed the tests.\n"
            f"```python\n{previous.program.strip()}\n```\n{previous.verdict.feedback()}\n"
            "Fix the code."
        )
    if guidance:
        parts.append(f"Guidance from a senior reviewer:\n{guidance.strip()}")
    parts.append(_answer_format(style.cot))
    return [{"role": "system", "content": CODER_SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def checkpoint_messages(problem: Problem, history: list[Attempt], spec: str | None) -> list[Message]:
    """The reviewer's prompt: the task and the failed attempts so far."""
    shown = history[-3:]
    attempts = "\n\n".join(
        f"Attempt #{a.iteration + 1}:\n```python\n{a.program.strip()}\n```\n{a.verdict.feedback()}" for a in shown
    )
    spec_part = f"\n\nSpecification given to the coder:\n{spec.strip()}" if spec else ""
    return [
        {"role": "system", "content": "You are a senior engineer reviewing a junior's failing attempts."},
        {
            "role": "user",
            "content": (
                f"{_task_text(problem)}{spec_part}\n\nThe coder has failed {len(history)} attempts; the latest:\n\n"
                f"{attempts}\n\nDiagnose what is going wrong and give short, concrete guidance for the next "
                "attempt. Do not write the full solution."
            ),
        },
    ]
