"""Canonical solutions pass every task: no spurious failures from limits or the oracle."""

from __future__ import annotations

import asyncio
import os

import pytest

from koderz.datasets.loaders import load_dataset
from koderz.sandbox.sandbox import Sandbox, SandboxConfig


async def _failures(name: str, sandbox: Sandbox) -> list[str]:
    problems = load_dataset(name)
    verdicts = await asyncio.gather(*(sandbox.evaluate(p, p.reference_program) for p in problems))
    assert len(verdicts) == len(problems)
    return [
        f"{p.task_id} {v.status} {v.feedback()[:300]}" for p, v in zip(problems, verdicts, strict=True) if not v.passed
    ]


async def test_humaneval_canonical_all_pass(sandbox, leftovers) -> None:
    assert await _failures("humaneval", sandbox) == []
    assert leftovers() == []


async def test_canonical_verdict_details(humaneval, sandbox) -> None:
    problem = humaneval["HumanEval/0"]
    verdict = await sandbox.evaluate(problem, problem.reference_program)
    assert verdict.passed and verdict.status == "passed"
    assert verdict.tests_passed == verdict.tests_total == len(problem.inputs) > 0
    assert verdict.feedback().startswith("All ")
    assert verdict.to_dict()["status"] == "passed"
    if os.geteuid() == 0:
        assert verdict.isolation["network"] == "namespace"
        assert verdict.isolation["filesystem"] == "private root"
        assert verdict.isolation["user"].startswith("uid ")


@pytest.mark.slow
@pytest.mark.parametrize("name,count", [("humaneval", 164), ("humaneval_plus", 164), ("mbpp_plus", 378)])
async def test_canonical_three_times_in_a_row(name: str, count: int, uid_base, leftovers) -> None:
    assert len(load_dataset(name)) == count
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base, max_processes=os.cpu_count() or 1))
    for _ in range(3):
        assert await _failures(name, sandbox) == []
    assert leftovers() == []
