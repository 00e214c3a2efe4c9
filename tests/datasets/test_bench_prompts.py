"""Prompts byte-identical to the benchmarks' own generators (run when the reference packages
of the ``parity`` extra are installed)."""

from __future__ import annotations

import importlib
import json
import sys
import types

import pytest

from koderz.datasets.bench_prompts import bigcodebench_prompt, livecodebench_code, livecodebench_prompt
from koderz.errors import ConfigError
from koderz.evalplus_sanitize import bigcodebench_sanitize
from koderz.plan import Plan
from koderz.problems import load_benchmark
from koderz.prompts import PromptStyle, attempt_messages
from koderz.vocab import Protocol
from tests.conftest import compose_config
from tests.support.bench_files import LCB_FILE, bcb_config, bcb_samples, lcb_config


@pytest.mark.parametrize("split", ["complete", "instruct"])
def test_bigcodebench_prompts_equal_its_generators(split: str):
    utility = pytest.importorskip("bigcodebench.provider.utility", exc_type=ImportError)
    for problem in load_benchmark(bcb_config(split=split)):
        ours = bigcodebench_prompt(problem)
        theirs = utility.make_raw_chat_prompt(
            problem.prompt, "full", split,
            "Please provide a self-contained Python script that solves the following problem in a markdown code block:",
            "Below is a Python script with a self-contained function that solves the problem and passes corresponding tests:",
            None,
        )  # fmt: skip
        assert ours.system is None and ours.user == theirs


def test_livecodebench_prompts_equal_its_generators(monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("livecodebench", exc_type=ImportError)
    # its prompts package imports the legacy anthropic constants unguarded (used only by the Claude
    # styles); a stand-in module holds them when the installed anthropic no longer has them
    legacy = types.ModuleType("anthropic")
    legacy.HUMAN_PROMPT, legacy.AI_PROMPT = "\n\nHuman:", "\n\nAssistant:"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "anthropic", legacy)
    generation = importlib.import_module("livecodebench.prompts.code_generation")
    from livecodebench.benchmarks.code_generation import CodeGenerationProblem
    from livecodebench.lm_styles import LMStyle

    rows = {r["question_id"]: r for r in map(json.loads, LCB_FILE.read_text().splitlines())}
    for problem in load_benchmark(lcb_config()):
        question = CodeGenerationProblem(**rows[problem.task_id])
        theirs = generation.format_prompt_generation(question, LMStyle.OpenAIChat)
        ours = livecodebench_prompt(problem)
        assert [{"role": "system", "content": ours.system}, {"role": "user", "content": ours.user}] == theirs


ANSWERS = [
    "Here:\n```python\nprint(1)\n```\n",
    "draft\n```python\nx = 1\n```\nfinal\n```python\nprint(2)\n```",
    "no fence at all",
    "```\nprint(3)\n```",
    "one fence only\n```python\nprint(4)",
]


@pytest.mark.parametrize("answer", ANSWERS)
def test_livecodebench_answers_are_read_as_its_extract_code_reads_them(answer: str):
    extraction = pytest.importorskip("livecodebench.utils.extraction_utils", exc_type=ImportError)
    from livecodebench.lm_styles import LMStyle

    assert livecodebench_code(answer) == extraction.extract_code(answer, LMStyle.OpenAIChat)


def test_the_benchmark_protocol_sends_the_benchmarks_own_messages_and_reads_answers_their_way():
    style = PromptStyle(protocol=Protocol.BENCHMARK, cot=False)
    bcb = load_benchmark(bcb_config())[0]
    lcb = load_benchmark(lcb_config())[0]
    assert attempt_messages(bcb, style) == [{"role": "user", "content": bigcodebench_prompt(bcb).user}]
    system, user = livecodebench_prompt(lcb).system, livecodebench_prompt(lcb).user
    assert attempt_messages(lcb, style) == [{"role": "system", "content": system}, {"role": "user", "content": user}]
    assert style.preamble(bcb) == "" and style.prefill == "" and style.label(spec=False) == "benchmark"
    answer = "Sure.\n```python\nimport math\n\ndef task_func(x):\n    return math.floor(x)\n\nprint(task_func(2))\n```"
    assert style.program(answer, bcb) == "import math\ndef task_func(x):\n    return math.floor(x)"  # the call cut
    assert style.program("a\n```python\nprint(input())\n```", lcb) == "print(input())"
    with pytest.raises(ValueError, match="zero-shot"):
        attempt_messages(bcb, style, spec="a spec")


def test_koderz_workflow_on_a_benchmark_uses_its_prompt_as_the_task_and_runs_the_program_alone():
    style = PromptStyle()
    bcb = load_benchmark(bcb_config())[0]
    [_, user] = attempt_messages(bcb, style, spec="the spec")
    assert user["content"].startswith(bigcodebench_prompt(bcb).user) and "the spec" in user["content"]
    assert style.preamble(bcb) == ""


def test_the_benchmark_protocol_is_refused_for_other_datasets_and_for_feedback_modes():
    with pytest.raises(
        ConfigError, match=r"^prompt.protocol=benchmark: is the prompt of bigcodebench and livecodebench"
    ):
        Plan.build(compose_config("prompt.protocol=benchmark", "spec.enabled=false", "prompt.cot=false"))
    with pytest.raises(ConfigError, match=r"^mode=iterative: prompt.protocol=benchmark needs mode=zero_shot"):
        Plan.build(compose_config("experiment=bigcodebench", "mode=iterative"))
    plan = Plan.build(compose_config("experiment=livecodebench"))
    assert plan.config.dataset.evaluator == "livecodebench" and plan.prompt.protocol is Protocol.BENCHMARK


def test_bigcodebench_answers_are_read_as_its_sanitize_reads_them():
    """koderz's port against bigcodebench 0.2.5's own ``sanitize`` on koderz's samples, fenced,
    bare, followed by a call of the entry point, and indented."""
    reference = pytest.importorskip("bigcodebench.sanitize", exc_type=ImportError)
    answers = [
        variant
        for sample in bcb_samples()
        for variant in (
            f"Here\n```python\n{sample.solution}\n```",
            sample.solution,
            sample.solution + "\nprint(task_func())\n",
            "  " + sample.solution,
        )
    ]
    answers += ["no code here", "```python\ndef task_func():\n    pass\nresult = task_func()\nprint(result)\n```"]
    differ = [a for a in answers if bigcodebench_sanitize(a, "task_func") != reference.sanitize(a, "task_func")]
    assert differ == []
