"""The prompts BigCodeBench and LiveCodeBench send to a chat model, byte for byte.

BigCodeBench (bigcodebench 0.2.5, ``provider/utility.make_raw_chat_prompt`` as its API providers
call it, no tokenizer): the instruction prefix, then the ``complete`` prompt in a code fence or
the ``instruct`` prompt as text. LiveCodeBench (``prompts/code_generation.py``, OpenAI chat
style): its generic system message and ``get_generic_question_template_answer``.
"""

from __future__ import annotations

from dataclasses import dataclass

from koderz.datasets import bigcodebench, livecodebench
from koderz.datasets.problem import Problem

BCB_INSTRUCTION_PREFIX = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:"
)
LCB_SYSTEM = (
    "You are an expert Python programmer. You will be given a question (problem specification) and will "
    "generate a correct Python program that matches the specification and passes all tests."
)
LCB_WITH_STARTER = "You will use the following starter code to write the solution to the problem and enclose your code within delimiters."
LCB_WITHOUT_STARTER = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the "
    "sample inputs). Enclose your code within delimiters as follows. Ensure that when the python program runs, "
    "it reads the inputs, runs the algorithm and writes output to STDOUT."
)


@dataclass(frozen=True)
class ChatPrompt:
    system: str | None
    user: str


def bigcodebench_prompt(problem: Problem) -> ChatPrompt:
    """The user message bigcodebench's generator sends for ``problem``'s split."""
    task = bigcodebench.task_of(problem)
    if task.split is bigcodebench.Split.COMPLETE:
        return ChatPrompt(None, f"{BCB_INSTRUCTION_PREFIX}\n```\n{problem.prompt.strip()}\n```\n")
    return ChatPrompt(None, f"{BCB_INSTRUCTION_PREFIX}\n{problem.prompt.strip()}\n")


def livecodebench_prompt(problem: Problem) -> ChatPrompt:
    """LiveCodeBench's system and user messages for ``problem`` (OpenAI chat style)."""
    task = livecodebench.task_of(problem)
    prompt = f"### Question:\n{problem.prompt}\n\n"
    if task.starter_code:
        prompt += f"### Format: {LCB_WITH_STARTER}\n```python\n{task.starter_code}\n```\n\n"
    else:
        prompt += f"### Format: {LCB_WITHOUT_STARTER}\n```python\n# YOUR CODE HERE\n```\n\n"
    prompt += "### Answer: (use the provided format with backticks)\n\n"
    return ChatPrompt(LCB_SYSTEM, prompt)


def benchmark_prompt(problem: Problem) -> ChatPrompt:
    """The benchmark's own prompt for ``problem`` (BigCodeBench or LiveCodeBench)."""
    if problem.dataset == livecodebench.DATASET:
        return livecodebench_prompt(problem)
    return bigcodebench_prompt(problem)


def livecodebench_code(answer: str) -> str:
    """The code in a chat model's answer as LiveCodeBench reads it (``extract_code``, OpenAI chat
    style): the lines between the last two lines holding a fence; "" with fewer than two."""
    lines = answer.split("\n")
    fences = [index for index, line in enumerate(lines) if "```" in line]
    if len(fences) < 2:
        return ""
    return "\n".join(lines[fences[-2] + 1 : fences[-1]])
