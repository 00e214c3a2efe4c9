"""Prompts byte-identical to the benchmarks' own generators (run when the reference packages
of the ``parity`` extra are installed)."""

from __future__ import annotations

import importlib
import json
import sys
import types

import pytest

from koderz.datasets.bench_prompts import bigcodebench_prompt, livecodebench_prompt
from koderz.problems import load_benchmark
from tests.support.bench_files import LCB_FILE, bcb_config, lcb_config


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
