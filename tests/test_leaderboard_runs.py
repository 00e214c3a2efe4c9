"""Whole runs for leaderboard parity: the evalplus protocol on the wire (the real openai and ollama
SDK clients against the scripted server, a fake model named as one), one samples row per sample
in every mode and every attempt in attempts.jsonl, and base beside base+plus figures in the
console table, results.json, MLflow and the EvalPlus export."""

from __future__ import annotations

import gzip
import json
import logging
import time
from pathlib import Path

import pytest

from koderz import report
from koderz.config import TrackingConfig
from koderz.datasets.files import data_file
from koderz.datasets.loaders import load_dataset
from koderz.errors import ConfigError
from koderz.export.evalplus import eval_results
from koderz.models.prefill import PROBE
from koderz.prompts import PromptStyle, attempt_messages
from koderz.records import AttemptOutcome, ProblemRecord, Roles, RunFolder
from koderz.vocab import Mode, Protocol, Status
from tests.conftest import run_job
from tests.support.evalplus_cli import evalplus_reads
from tests.support.fakes.scripted_server import Rules, ScriptedServer
from tests.support.mlflow_runs import fresh_store

QUIET = ("tracking=off", "cortex=off", "cache=false")
CONTINUATION = "def add(x: int, y: int):\n    return x + y\n```\n\nThe function returns the sum of x and y."


def replay_file(path: Path, answers: dict[str, list[str]]) -> Path:
    path.write_text(
        "".join(json.dumps({"task_id": t, "solution": a}) + "\n" for t, seq in answers.items() for a in seq)
    )
    return path


def right(task: str) -> str:
    """The canonical program of a HumanEval task."""
    return next(p.reference_program for p in load_dataset("humaneval") if p.task_id == task)


def wrong(task: str) -> str:
    entry = next(p.entry_point for p in load_dataset("humaneval") if p.task_id == task)
    return f"def {entry}(*args):\n    return None\n"


# ---------------------------------------------------------------- the evalplus protocol on the wire


@pytest.mark.parametrize("provider", ["openai", "ollama"])
async def test_an_evalplus_run_sends_evalplus_prompt_greedy_and_reads_the_continuation(provider, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-scripted")
    monkeypatch.chdir(tmp_path)
    async with ScriptedServer(Rules([(r"Count from 1 to 10", [" 5, 6, 7, 8, 9, 10"])], default=CONTINUATION)) as server:
        where = f"model.base_url={server.openai_url}" if provider == "openai" else f"model.host={server.url}"
        model = "gpt-4o-mini" if provider == "openai" else "qwen2.5-coder-32b"
        overrides = [
            "experiment=evalplus",
            "dataset=humaneval_plus_mini",
            f"model={model}",
            where,
            "problems=[HumanEval/53]",
        ]
        outcome = await run_job(tmp_path / "run", *overrides, *QUIET)
        probe, request = server.chat_requests  # the prefill probe (koderz.models.prefill), then the task
    problem = next(p for p in load_dataset("humaneval_plus_mini") if p.task_id == "HumanEval/53")
    assert request.messages == attempt_messages(problem, PromptStyle(Protocol.EVALPLUS, cot=False))
    assert probe.messages == PROBE
    body = request.body or {}
    sampling = (body["temperature"], body["max_tokens"]) if provider == "openai" else (
        body["options"]["temperature"], body["options"]["num_predict"])  # fmt: skip
    assert sampling == (0.0, 768)  # greedy, EvalPlus's 768 new tokens
    summary = outcome.summary
    assert (summary.prompt, summary.passed, summary.roles.spec, summary.roles.reviewer) == ("evalplus", 1, None, None)
    assert summary.prefill_continued is True and summary.prefill_ignored == 0
    (sample,) = RunFolder(outcome.folder).samples(Mode.ZERO_SHOT)
    assert sample.solution.strip() == "def add(x: int, y: int):\n    return x + y"


NO_IMPORT = (
    "Here you go:\n```python\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
    "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1 :])\n```\n"
)


@pytest.mark.parametrize(("protocol", "passed"), [("experiment=evalplus", 0), ("prompt.protocol=koderz", 1)])
async def test_only_koderz_protocol_lends_the_prompts_imports_to_the_answer(protocol, passed, tmp_path: Path) -> None:
    """A raw answer (EvalPlus's .raw.jsonl) that uses List without importing it: EvalPlus runs the
    sanitized program alone (NameError), koderz's protocol runs the prompt's imports first."""
    raw = tmp_path / "model.raw.jsonl"
    raw.write_text(json.dumps({"task_id": "HumanEval/0", "solution": NO_IMPORT}) + "\n")
    overrides = ["model=replay", f"model.samples={raw}", protocol, "dataset=humaneval_plus_mini"]
    outcome = await run_job(tmp_path / "run", *overrides, "problems=[HumanEval/0]", *QUIET)
    assert outcome.summary.prompt.startswith(protocol.partition("=")[2])  # the summary names the protocol
    (attempt,) = RunFolder(outcome.folder).attempts()
    assert (outcome.summary.passed, attempt.passed) == (passed, bool(passed))
    if not passed:
        assert attempt.error == "NameError: name 'List' is not defined"
        assert attempt.program == NO_IMPORT.split("```python\n")[1].split("```")[0].rstrip("\n")


# ------------------------------------------------------------------------- run files, every mode


async def test_zero_shot_samples_are_tasks_times_n_samples(tmp_path: Path) -> None:
    outcome = await run_job(tmp_path / "run", "n_samples=3", "end=4", *QUIET)
    folder = RunFolder(outcome.folder)
    samples, attempts = folder.samples(Mode.ZERO_SHOT), folder.attempts()
    assert len(samples) == len(attempts) == 4 * 3
    assert sorted((s.task_id, s.sample_index) for s in samples) == sorted(
        (f"HumanEval/{t}", i) for t in range(4) for i in range(3)
    )
    assert outcome.summary.pass_at_k == {"pass@1": 1.0}


async def test_an_iterative_run_keeps_one_sample_per_task_and_every_attempt(tmp_path: Path) -> None:
    tasks = ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    answers = {
        tasks[0]: [wrong(tasks[0]), wrong(tasks[0]), right(tasks[0])],
        tasks[1]: [right(tasks[1])],
        tasks[2]: [wrong(tasks[2])] * 3,
    }
    samples_file = replay_file(tmp_path / "answers.jsonl", answers)
    overrides = [
        "model=replay",
        f"model.samples={samples_file}",
        "mode=iterative",
        "max_iterations=3",
        "checkpoints.enabled=false",
        f"problems=[{','.join(tasks)}]",
    ]
    folder = RunFolder((await run_job(tmp_path / "run", *overrides, *QUIET)).folder)
    samples, attempts = folder.samples(Mode.ITERATIVE), folder.attempts()
    assert [(s.task_id, s.sample_index, s.passed) for s in sorted(samples, key=lambda s: s.task_id)] == [
        (tasks[0], 0, True), (tasks[1], 0, True), (tasks[2], 0, False)]  # fmt: skip
    assert sorted((a.task_id, a.index) for a in attempts) == sorted(
        [(tasks[0], i) for i in range(3)] + [(tasks[1], 0)] + [(tasks[2], i) for i in range(3)]
    )
    last = {a.task_id: a.program for a in attempts}  # the file's order: each task's last attempt
    assert all(s.solution == last[s.task_id] for s in samples)


async def test_a_comparative_run_has_a_samples_file_per_mode(tmp_path: Path) -> None:
    tasks = ["HumanEval/0", "HumanEval/1"]
    samples_file = replay_file(tmp_path / "answers.jsonl", {t: [wrong(t), right(t)] for t in tasks})
    overrides = [
        "model=replay",
        f"model.samples={samples_file}",
        "mode=comparative",
        "n_samples=2",
        "max_iterations=2",
        "checkpoints.enabled=false",
    ]
    folder = RunFolder.existing(
        (await run_job(tmp_path / "run", *overrides, f"problems=[{','.join(tasks)}]", *QUIET)).folder
    )
    zero_shot, iterative = folder.samples(Mode.ZERO_SHOT), folder.samples(Mode.ITERATIVE)
    assert (folder.path / "samples.zero_shot.jsonl").is_file() and (folder.path / "samples.iterative.jsonl").is_file()
    assert not (folder.path / "samples.jsonl").exists()
    assert len(zero_shot) == 2 * 2 and [s.passed for s in sorted(zero_shot, key=lambda s: s.sample_index)] == [
        False,
        False,
        True,
        True,
    ]
    assert len(iterative) == 2 and all(s.passed for s in iterative)
    assert len(folder.attempts()) == 2 * 2 + 2 * 2  # two samples each, then solved at the second iteration


# ---------------------------------------------------------------- base and base+plus figures


def evalplus_records() -> list[ProblemRecord]:
    """HumanEval/0 passes everything; HumanEval/53 passes its base tests and fails the plus ones."""

    def record(task: str, passed: bool) -> ProblemRecord:
        status = Status.PASSED if passed else Status.FAILED
        outcome = AttemptOutcome(index=0, status=status, passed=passed, base_passed=True)
        return ProblemRecord(task_id=task, mode=Mode.ZERO_SHOT, status=status, passed=passed, base_passed=True,
                             attempts=1, finished_at=time.time(), outcomes=[outcome])  # fmt: skip

    return [record("HumanEval/0", True), record("HumanEval/53", False)]


def test_base_and_plus_sit_side_by_side_in_the_console_table() -> None:
    summary = report.summarize(evalplus_records(), run_id="r-1", roles=Roles(coder="m"), mode=Mode.ZERO_SHOT,
                               dataset="humaneval_plus", prompt="evalplus", selected=2)  # fmt: skip
    text = report.format_summary(summary, "/run")
    assert "1/2 (50.0%) on base+plus tests" in text and "2/2 (100.0%)" in text
    assert "base 1.000, base+plus 0.500" in text
    assert ["prompt", "evalplus"] in [line.split() for line in text.splitlines()]  # no warning for evalplus
    koderz_text = report.format_summary(summary.model_copy(update={"prompt": "koderz spec+cot"}), "/run")
    assert "not EvalPlus's leaderboard protocol: experiment=evalplus" in koderz_text


def base_only_add(path: Path) -> Path:
    """A replay file whose HumanEval/53 answer is right on the base inputs only (known wrong on plus)."""
    rows = [json.loads(line) for line in gzip.decompress(data_file("humaneval_plus_mini").read_bytes()).splitlines()]
    base = [tuple(args) for args in next(r for r in rows if r["task_id"] == "HumanEval/53")["base_input"]]
    program = f"BASE = {base!r}\n\n\ndef add(x, y):\n    return x + y if (x, y) in BASE else x - y - 1\n"
    return replay_file(path, {"HumanEval/0": [right("HumanEval/0")], "HumanEval/53": [program]})


async def test_an_evalplus_dataset_run_reports_base_and_plus_end_to_end(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, capsys
) -> None:
    """The reference model passes every base and plus input; an answer right on the base inputs
    only is a base pass and a plus fail in the summary, results.json, the console and the export."""
    reference = await run_job(tmp_path / "reference", "dataset=humaneval_plus_mini", "end=5", *QUIET)
    assert reference.summary.passed == reference.summary.answered == 5
    overrides = [
        "model=replay",
        f"model.samples={base_only_add(tmp_path / 'answers.jsonl')}",
        "experiment=evalplus",
        "dataset=humaneval_plus_mini",
    ]
    replayed = await run_job(tmp_path / "replay", *overrides, "problems=[HumanEval/0,HumanEval/53]", *QUIET)
    assert (replayed.summary.answered, replayed.summary.passed) == (2, 1)
    assert reference.summary.base is not None and reference.summary.base.passed == 5
    saved = RunFolder(replayed.folder).read_results().summary
    assert saved.base is not None and (saved.base.passed, saved.passed) == (2, 1)
    assert "base 1.000, base+plus 0.500" in report.format_summary(saved, str(replayed.folder))
    export = eval_results(RunFolder.existing(replayed.folder), Mode.ZERO_SHOT)
    assert [(e["base_status"], e["plus_status"]) for e in export.results["eval"]["HumanEval/53"]] == [("pass", "fail")]
    results_file = tmp_path / "samples_eval_results.json"
    results_file.write_text(json.dumps(export.results))
    assert evalplus_reads(results_file, "humaneval", capsys) == {"base": {"pass@1": 1.0}, "plus": {"pass@1": 0.5}}
    assert_mlflow_has_base_and_plus(replayed.folder, tmp_path, tmp_path_factory)


def assert_mlflow_has_base_and_plus(folder: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The real run folder logged to a real SQLite store: pass@1 on base and on base+plus, the protocol."""
    import mlflow

    from koderz.tracking.logger import log_run_folder

    tracking = TrackingConfig(enabled=True, uri=fresh_store(tmp_path_factory, tmp_path / "mlflow.db"),
                              artifact_location=str(tmp_path / "artifacts"), traces=False, figures=False)  # fmt: skip
    run_id = log_run_folder(folder, tracking)
    assert run_id is not None
    run = mlflow.MlflowClient(tracking.uri).get_run(run_id)
    metrics, tags = run.data.metrics, run.data.tags
    # pass@1.base and pass@1.plus under the names MLflow accepts (no "@")
    assert (metrics["pass_1.base"], metrics["pass_1.plus"], metrics["pass_rate.base"], metrics["pass_rate"]) == (
        1.0,
        0.5,
        1.0,
        0.5,
    )
    assert (tags["koderz.prompt"], tags["koderz.model"], tags["koderz.spec_model"]) == ("evalplus", "replay", "-")
    assert run.data.params["prompt.protocol"] == "evalplus"


# ---------------------------------------------------------------- n_samples against a replay file


async def test_n_samples_beyond_every_tasks_samples_is_bad_input(tmp_path) -> None:
    tasks = ["HumanEval/0", "HumanEval/1"]
    samples_file = replay_file(tmp_path / "one.jsonl", {t: [right(t)] for t in tasks})
    with pytest.raises(ConfigError, match=r"^n_samples=10: the model has at most 1 samples per selected task"):
        await run_job(tmp_path / "run", "model=replay", f"model.samples={samples_file}", "n_samples=10", *QUIET)


async def test_tasks_with_fewer_samples_than_n_samples_are_named(tmp_path, caplog) -> None:
    samples_file = replay_file(
        tmp_path / "mixed.jsonl", {"HumanEval/0": [right("HumanEval/0")] * 2, "HumanEval/1": [right("HumanEval/1")]}
    )
    overrides = ("model=replay", f"model.samples={samples_file}", "n_samples=2", "problems=[HumanEval/0,HumanEval/1]")
    with caplog.at_level(logging.WARNING, logger="koderz.runner"):
        outcome = await run_job(tmp_path / "run", *overrides, *QUIET)
    assert "n_samples=2: 1 selected tasks have fewer samples (e.g. HumanEval/1: 1)" in caplog.text
    assert outcome.summary.answered == 2
