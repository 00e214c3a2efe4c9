"""``python -m koderz.export evalplus``: EvalPlus's eval_results.json of a run, read back with
EvalPlus's own code (``evalplus.evaluate`` loads an existing results file and reports pass@k)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from koderz import report
from koderz.datasets.files import data_file
from koderz.export.__main__ import main
from koderz.export.evalplus import dataset_hash, eval_results
from koderz.records import AttemptRecord, ProblemRecord, ProblemResult, Roles, RunFolder
from koderz.vocab import Mode, Status
from tests.support.evalplus_cli import evalplus_reads

PROGRAM = "def f(x):\n    return x\n"
FAILING = "(7,)"


def attempt(task: str, index: int, status: Status, base: bool | None, mode: Mode = Mode.ZERO_SHOT) -> AttemptRecord:
    passed = status is Status.PASSED
    return AttemptRecord(
        task_id=task,
        mode=mode,
        index=index,
        status=status,
        passed=passed,
        base_passed=base,
        tests_passed=10 if passed else 4,
        tests_total=10,
        program=f"# {task} sample {index}\n{PROGRAM}",
        failing_input=None if passed else FAILING,
    )


def result(
    task: str, *attempts: AttemptRecord, mode: Mode = Mode.ZERO_SHOT, status: Status | None = None
) -> ProblemResult:
    passing = [a for a in attempts if a.passed]
    base = [a.base_passed for a in attempts if a.base_passed is not None]
    record = ProblemRecord(
        task_id=task,
        mode=mode,
        status=status or (Status.PASSED if passing else attempts[-1].status),
        passed=bool(passing),
        base_passed=any(base) if base else None,
        attempts=len(attempts),
        finished_at=time.time(),
        outcomes=[a.outcome() for a in attempts],
    )
    return ProblemResult(record=record, attempts=list(attempts))


def run_folder(path: Path, dataset: str, results: list[ProblemResult], mode: Mode = Mode.ZERO_SHOT) -> RunFolder:
    """A run folder written through RunFolder, as a run writes it."""
    folder = RunFolder(path, parts=mode.spec.parts)
    folder.path.mkdir(parents=True)
    folder.write_config({"dataset": {"name": dataset}, "mode": {"name": mode.value}})
    folder.open()
    for item in results:
        folder.append(item, feedback=item.record.mode.spec.feedback)
    folder.close()
    return RunFolder.existing(path)


def mixed(path: Path, dataset: str = "humaneval_plus") -> RunFolder:
    """Two samples per task: pass + base-pass/plus-fail; base-fail + base-pass/plus-timeout; a
    problem the model never answered."""
    return run_folder(
        path,
        dataset,
        [
            result(
                "HumanEval/0",
                attempt("HumanEval/0", 0, Status.PASSED, True),
                attempt("HumanEval/0", 1, Status.FAILED, True),
            ),
            result(
                "HumanEval/1",
                attempt("HumanEval/1", 0, Status.ERROR, False),
                attempt("HumanEval/1", 1, Status.TIMEOUT, True),
            ),
            ProblemResult(record=ProblemRecord(task_id="HumanEval/2", mode=Mode.ZERO_SHOT, status=Status.MODEL_ERROR)),
        ],
    )


# ------------------------------------------------------------------------------------- tests


def test_statuses_say_base_and_plus_as_evalplus_does(tmp_path: Path) -> None:
    export = eval_results(mixed(tmp_path / "run"), Mode.ZERO_SHOT)
    entries = export.results["eval"]
    assert list(entries) == ["HumanEval/0", "HumanEval/1"] and export.unanswered == ["HumanEval/2"]
    statuses = {t: [(e["base_status"], e["plus_status"]) for e in rows] for t, rows in entries.items()}
    assert statuses == {
        "HumanEval/0": [("pass", "pass"), ("pass", "fail")],
        "HumanEval/1": [("fail", None), ("pass", "timeout")],  # plus unknown once base failed
    }
    first, second = entries["HumanEval/0"]
    assert first["solution"].startswith("# HumanEval/0 sample 0") and second["solution"].startswith(
        "# HumanEval/0 sample 1"
    )
    assert (second["base_fail_tests"], second["plus_fail_tests"]) == ([], [FAILING])
    assert entries["HumanEval/1"][0]["base_fail_tests"] == [FAILING]
    assert set(first) == {"task_id", "solution", "base_status", "plus_status", "base_fail_tests", "plus_fail_tests"}


def test_pass_at_k_is_koderz_summary_and_what_evalplus_reads_from_the_file(tmp_path: Path, capsys) -> None:
    folder = mixed(tmp_path / "run")
    export = eval_results(folder, Mode.ZERO_SHOT)
    summary = report.summarize(
        folder.records(),
        run_id="r",
        roles=Roles(coder="m"),
        mode=Mode.ZERO_SHOT,
        dataset="humaneval_plus",
        prompt="evalplus",
        selected=3,
    )
    assert summary.base is not None
    assert export.results["pass_at_k"] == {
        "base": {"pass@1": pytest.approx(0.75)},
        "plus": {"pass@1": pytest.approx(0.25)},
    }
    assert export.results["pass_at_k"]["base"]["pass@1"] == pytest.approx(summary.base.pass_at_k["pass@1"])
    assert export.results["pass_at_k"]["plus"]["pass@1"] == pytest.approx(summary.pass_at_k["pass@1"])
    results_file = tmp_path / "samples_eval_results.json"
    results_file.write_text(json.dumps(export.results))
    assert evalplus_reads(results_file, "humaneval", capsys) == {"base": {"pass@1": 0.75}, "plus": {"pass@1": 0.25}}


@pytest.mark.parametrize(("name", "module", "variable", "function"), [
    ("humaneval_plus", "evalplus.data.humaneval", "HUMANEVAL_OVERRIDE_PATH", "get_human_eval_plus_hash"),
    ("mbpp_plus", "evalplus.data.mbpp", "MBPP_OVERRIDE_PATH", "get_mbpp_plus_hash"),
])  # fmt: skip
def test_the_hash_is_evalplus_hash_of_the_dataset(name, module, variable, function, tmp_path, monkeypatch) -> None:
    import importlib

    evalplus_data = importlib.import_module(module)
    copy = tmp_path / f"{name}.jsonl"  # EvalPlus hashes the JSONL it keeps in its cache, uncompressed
    copy.write_bytes(gzip.decompress(data_file(name).read_bytes()))
    monkeypatch.setattr(evalplus_data, variable, str(copy))
    assert dataset_hash(name) == getattr(evalplus_data, function)()


def test_the_command_writes_into_the_run_folder_and_prints_both_figures(tmp_path: Path, capsys) -> None:
    folder = mixed(tmp_path / "run")
    assert main(["evalplus", str(folder.path)]) == 0
    out = capsys.readouterr().out.splitlines()
    samples = folder.path / "evalplus_samples.jsonl"
    assert out == [
        str(folder.path / "eval_results.json"),
        "humaneval (base tests): pass@1 0.750",
        "humaneval+ (base + extra tests): pass@1 0.250",
        str(samples),
        f"evalplus.evaluate --dataset humaneval --samples {samples} will print: base pass@1 0.009, plus pass@1 0.003;"
        " 162 tasks without a sample have empty solutions (failed)",
    ]
    assert json.loads((folder.path / "eval_results.json").read_text())["hash"] == dataset_hash("humaneval_plus")


def test_the_samples_file_has_every_task_and_the_programs_koderz_judged(tmp_path: Path) -> None:
    """EvalPlus refuses a samples file without every task: the unanswered (HumanEval/2) and the
    unselected ones get empty solutions, two each like the answered ones (pass@2 stays defined).
    Under koderz's protocol the prompt's preamble (which koderz ran first) leads each program."""
    folder = mixed(tmp_path / "run")
    assert main(["evalplus", str(folder.path)]) == 0
    lines = [json.loads(line) for line in (folder.path / "evalplus_samples.jsonl").read_text().splitlines()]
    tasks = [line["task_id"] for line in lines]
    assert tasks == [f"HumanEval/{n}" for n in range(164) for _ in range(2)]
    assert [line["solution"] for line in lines[:2]] == [
        f"from typing import List\n\n\n# HumanEval/0 sample {i}\n{PROGRAM}" for i in range(2)
    ]
    assert {line["solution"] for line in lines[4:]} == {""}
    config = folder.read_config()
    folder.write_config({**config, "prompt": {"protocol": "evalplus"}})
    assert main(["evalplus", str(folder.path)]) == 0
    lines = [json.loads(line) for line in (folder.path / "evalplus_samples.jsonl").read_text().splitlines()]
    assert lines[0]["solution"] == f"# HumanEval/0 sample 0\n{PROGRAM}"  # EvalPlus ran the program alone


def test_a_comparative_run_exports_its_headline_part_or_the_part_asked_for(tmp_path: Path, capsys) -> None:
    feedback = [
        attempt("HumanEval/0", 0, Status.FAILED, False, Mode.ITERATIVE),
        attempt("HumanEval/0", 1, Status.PASSED, True, Mode.ITERATIVE),
    ]
    folder = run_folder(
        tmp_path / "run",
        "humaneval_plus",
        [
            result("HumanEval/0", attempt("HumanEval/0", 0, Status.FAILED, True)),
            result("HumanEval/0", *feedback, mode=Mode.ITERATIVE),
        ],
        mode=Mode.COMPARATIVE,
    )
    assert main(["evalplus", str(folder.path)]) == 0
    iterative = json.loads((folder.path / "eval_results.iterative.json").read_text())
    assert [e["base_status"] for e in iterative["eval"]["HumanEval/0"]] == ["pass"]  # the iteration's final sample
    assert main(["evalplus", str(folder.path), "--mode", "zero_shot", "--out", str(tmp_path / "zs.json")]) == 0
    zero_shot = json.loads((tmp_path / "zs.json").read_text())
    assert [(e["base_status"], e["plus_status"]) for e in zero_shot["eval"]["HumanEval/0"]] == [("pass", "fail")]


def test_bad_input_is_one_line_exit_2_and_nothing_saved_is_touched(tmp_path: Path, capsys) -> None:
    folder = mixed(tmp_path / "run")
    assert main(["evalplus", str(folder.path)]) == 0
    saved = (folder.path / "eval_results.json").read_bytes()
    saved_samples = (folder.path / "evalplus_samples.jsonl").read_bytes()
    humaneval = run_folder(
        tmp_path / "he", "humaneval", [result("HumanEval/0", attempt("HumanEval/0", 0, Status.PASSED, None))]
    )
    old = run_folder(
        tmp_path / "old", "humaneval_plus", [result("HumanEval/0", attempt("HumanEval/0", 0, Status.FAILED, None))]
    )
    cases = [
        ([str(humaneval.path)], "dataset=humaneval: not an EvalPlus dataset"),
        ([str(tmp_path)], "not a koderz run folder"),
        ([str(old.path)], "HumanEval/0 sample 0 failed without a base verdict"),
        ([str(folder.path), "--out", str(tmp_path / "missing" / "x.json")], "missing/x.json: cannot write"),
        ([str(folder.path), "--samples", str(tmp_path / "missing" / "s.jsonl")], "missing/s.jsonl: cannot write"),
        ([str(folder.path), "--samples", str(tmp_path / "s.json")], "a samples file ending in .jsonl"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert main(["evalplus", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert (folder.path / "eval_results.json").read_bytes() == saved
    assert (folder.path / "evalplus_samples.jsonl").read_bytes() == saved_samples
    assert not any(p.name.endswith(".tmp") for p in folder.path.iterdir())  # no partial file left
    assert not (humaneval.path / "eval_results.json").exists() and not (old.path / "eval_results.json").exists()


def test_python_dash_m_koderz_export_is_the_command(tmp_path: Path) -> None:
    folder = mixed(tmp_path / "run")
    done = subprocess.run(
        [sys.executable, "-m", "koderz.export", "evalplus", str(folder.path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == str(folder.path / "eval_results.json")
    assert "left out 1 problems without a verdict" in done.stderr and "HumanEval/2" in done.stderr
