"""The EvalPlus route against EvalPlus's own tools, on real raw model answers (slow: EvalPlus computes
its ground truth and judges every task).

Raw answers (markdown, prose) of a real model for HumanEval/0-11 (HumanEval/7 left unanswered), as
``evalplus.codegen`` saves them (``*.raw.jsonl``), go (a) through ``python -m koderz model=replay
experiment=evalplus`` and (b) through ``python -m evalplus.sanitize`` + ``python -m evalplus.evaluate``
on HumanEval+ Mini: the same program and the same base and base+plus verdict per task. Then the
run's export goes through ``evalplus.evaluate --samples`` as it is: EvalPlus accepts it (every task
present) and prints the figures the export announced.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import evalplus_cli

TASKS = [f"HumanEval/{n}" for n in range(12)]
UNANSWERED = "HumanEval/7"
DEADLINE = 600.0

pytestmark = pytest.mark.slow


def first_raw_answers(shared_data: Path) -> dict[str, str]:
    answers: dict[str, str] = {}
    with gzip.open(shared_data / "real-llm-humaneval-samples.jsonl.gz", "rt", encoding="utf-8") as rows:
        for line in rows:
            row = json.loads(line)
            answers.setdefault(row["task_id"], row["raw_output"])
    return answers


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def route(tmp_path_factory: pytest.TempPathFactory):
    """(work dir, EvalPlus env, raw answers, koderz's attempts by task, the export's stdout)."""
    from tests.conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    work = tmp_path_factory.mktemp("parity")
    answers = first_raw_answers(SHARED_DATA)
    raw = write_jsonl(
        work / "model.raw.jsonl",
        [{"task_id": t, "solution": answers[t]} for t in TASKS if t != UNANSWERED],
    )
    run_dir = work / "run"
    args = [f"model.samples={raw}", "experiment=evalplus", "dataset=humaneval_plus_mini", f"end={len(TASKS)}"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "koderz",
            "model=replay",
            *args,
            "tracking=off",
            "cortex=off",
            "cache=false",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert (run_dir / "results.json").is_file(), done.stderr
    attempts = {
        a["task_id"]: a for a in map(json.loads, (run_dir / "attempts.jsonl").read_text(encoding="utf-8").splitlines())
    }
    assert sorted(attempts) == sorted(t for t in TASKS if t != UNANSWERED)
    exported = subprocess.run(
        [sys.executable, "-m", "koderz.export", "evalplus", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert exported.returncode == 0, exported.stderr
    env = evalplus_cli.environment(SHARED_DATA, work / "cache")
    return work, env, answers, attempts, exported.stdout.splitlines()


def verdict(base_status: str, plus_status: str | None) -> tuple[bool, bool]:
    return base_status == "pass", base_status == plus_status == "pass"


def test_raw_answers_get_evalplus_programs_and_verdicts(route) -> None:
    work, env, answers, attempts, _ = route
    rows = [{"task_id": f"HumanEval/{n}", "solution": ""} for n in range(164)]
    for row in rows:
        if row["task_id"] in attempts:
            row["solution"] = answers[row["task_id"]]
    sanitized = evalplus_cli.sanitize(write_jsonl(work / "all.raw.jsonl", rows), env)
    solutions = {r["task_id"]: r["solution"] for r in map(json.loads, sanitized.read_text().splitlines())}
    theirs = evalplus_cli.evaluate(sanitized, env).statuses
    for task, attempt in attempts.items():
        assert attempt["program"] == solutions[task], task
        ours = (bool(attempt["passed"] or attempt["base_passed"]), bool(attempt["passed"]))
        assert ours == verdict(*theirs[task][0]), (task, attempt["status"], attempt.get("error"))
    # the real answers include ones that use List without importing it: EvalPlus (and koderz) fail them
    assert any("NameError: name 'List'" in (a.get("error") or "") for a in attempts.values())


def test_the_export_is_judged_by_evalplus_as_it_is_and_prints_koderz_figures(route) -> None:
    _, env, _, attempts, out = route
    samples = Path(out[3])
    announced = out[4]
    judged = evalplus_cli.evaluate(samples, env)
    assert len(judged.statuses) == 164  # every task present, the unanswered one and the unselected ones too
    assert judged.statuses[UNANSWERED] == [("fail", "fail")]
    for task, attempt in attempts.items():
        ours = (bool(attempt["passed"] or attempt["base_passed"]), bool(attempt["passed"]))
        assert verdict(*judged.statuses[task][0]) == ours, task
    printed = ", ".join(f"{part} {k} {v:.3f}" for part in ("base", "plus") for k, v in judged.printed[part].items())
    assert f"will print: {printed};" in announced
