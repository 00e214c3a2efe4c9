"""EvalPlus 0.3.1's own command-line tools, run as a user runs them (a process each), for the tests
that compare koderz with EvalPlus: ``python -m evalplus.sanitize`` and ``python -m evalplus.evaluate``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

DEADLINE = 900.0  # seconds EvalPlus may take on a loaded machine (its ground truth included)


@dataclass(frozen=True)
class EvalPlusVerdicts:
    """What ``evalplus.evaluate`` printed (pass@k of base and base+plus) and each sample's statuses."""

    printed: dict[str, dict[str, float]]
    statuses: dict[str, list[tuple[str, str | None]]]  # task -> (base_status, plus_status) per sample


def environment(shared_data: Path, cache: Path) -> dict[str, str]:
    """EvalPlus on the shared data (no download): HumanEval+ Mini, MBPP+; its ground-truth cache in ``cache``."""
    return dict(
        os.environ,
        HUMANEVAL_OVERRIDE_PATH=str(shared_data / "HumanEvalPlus-Mini-v0.1.10.jsonl.gz"),
        MBPP_OVERRIDE_PATH=str(shared_data / "MbppPlus-v0.2.0.jsonl.gz"),
        XDG_CACHE_HOME=str(cache),
    )


def sanitize(raw: Path, env: dict[str, str]) -> Path:
    """``python -m evalplus.sanitize --samples RAW``; the ``-sanitized.jsonl`` it writes."""
    done = subprocess.run(
        [sys.executable, "-m", "evalplus.sanitize", "--samples", str(raw)],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return raw.with_name(raw.name.replace(".jsonl", "-sanitized.jsonl"))


def evaluate(samples: Path, env: dict[str, str]) -> EvalPlusVerdicts:
    """``python -m evalplus.evaluate --dataset humaneval --samples FILE`` (one worker)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "evalplus.evaluate",
            "--dataset",
            "humaneval",
            "--samples",
            str(samples),
            "--parallel",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    printed = printed_figures(done.stdout)
    results = json.loads(samples.with_name(samples.name.replace(".jsonl", "_eval_results.json")).read_text())
    statuses = {
        task: [(e["base_status"], e["plus_status"]) for e in entries] for task, entries in results["eval"].items()
    }
    return EvalPlusVerdicts(printed, statuses)


def evalplus_reads(results_file: Path, dataset: str, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, float]]:
    """pass@k as EvalPlus's ``evaluate`` prints it after loading an existing ``*_eval_results.json``."""
    from evalplus.evaluate import evaluate

    samples = results_file.with_name(results_file.name.replace("_eval_results.json", ".jsonl"))
    capsys.readouterr()
    evaluate(dataset=dataset, samples=str(samples))
    return printed_figures(capsys.readouterr().out)


def printed_figures(out: str) -> dict[str, dict[str, float]]:
    """The pass@k lines ``evalplus.evaluate`` prints, by part (base; plus = base + extra tests)."""
    figures: dict[str, dict[str, float]] = {"base": {}, "plus": {}}
    part = ""
    for line in re.sub(r"\x1b\[[0-9;]*m", "", out).splitlines():
        if "(base tests)" in line:
            part = "base"
        elif "(base + extra tests)" in line:
            part = "plus"
        elif match := re.match(r"(pass@\d+):\s+([0-9.]+)", line.strip()):
            figures[part][match.group(1)] = float(match.group(2))
    return figures
