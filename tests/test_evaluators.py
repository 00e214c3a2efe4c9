"""The evaluator seam: the dataset config names what judges answers; the runner and the experiment
call only the ``Evaluator`` protocol, so a new format plugs in without touching them."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from pathlib import Path

import pytest

from koderz.config import DatasetConfig
from koderz.datasets.problem import Problem
from koderz.errors import ConfigError
from koderz.evaluators import EVALUATORS
from koderz.plan import Plan
from koderz.records import RunFolder
from koderz.runner import Runner
from koderz.sandbox.sandbox import Sandbox, SandboxConfig
from koderz.sandbox.verdict import Verdict
from koderz.vocab import Status
from tests.conftest import compose_config

QUIET = ("tracking=off", "cortex=off", "cache=false")


class FakeEvaluator:
    """A fake format (named as such): fails every program with 3 of 7 tests, and records its calls."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.judged: list[tuple[str, str]] = []
        self.closed = 0
        self.prepared_for: list[str] = []

    async def prepare(self, problems: Awaitable[Sequence[Problem]] | None = None) -> None:
        self.prepared_for = [problem.task_id for problem in await problems] if problems is not None else []

    async def evaluate(self, problem: Problem, program: str, *, preamble: str | None = None) -> Verdict:
        self.judged.append((problem.task_id, program))
        return Verdict(
            passed=False, status=Status.FAILED, tests_passed=3, tests_total=7, tests_run=7, error="fake: 3 of 7"
        )

    def close(self) -> None:
        self.closed += 1


def test_the_default_datasets_are_judged_by_the_sandbox() -> None:
    for dataset in ("humaneval", "humaneval_plus", "humaneval_plus_mini", "mbpp_plus"):
        plan = Plan.build(compose_config(f"dataset={dataset}"))
        assert plan.config.dataset.evaluator == "humaneval"
        assert plan.evaluator is EVALUATORS["humaneval"]
    evaluator = EVALUATORS["humaneval"](SandboxConfig(memory_mb=256), DatasetConfig())
    try:
        assert isinstance(evaluator, Sandbox) and evaluator.config.memory_mb == 256
    finally:
        evaluator.close()


def test_an_unknown_evaluator_is_one_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"^dataset.evaluator=nope: choose one of humaneval"):
        Plan.build(compose_config("dataset.evaluator=nope"))


async def test_a_new_format_plugs_in_through_the_dataset_config(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    made: list[FakeEvaluator] = []

    def start(config: SandboxConfig, dataset: DatasetConfig) -> FakeEvaluator:
        made.append(FakeEvaluator(config))
        return made[-1]

    monkeypatch.setitem(EVALUATORS, "fake", start)
    plan = Plan.build(compose_config("end=2", "dataset.evaluator=fake", *QUIET))
    summary = (await Runner(plan, tmp_path / "run").run()).summary
    [evaluator] = made
    assert evaluator.config == plan.sandbox and evaluator.closed == 1
    assert [task for task, _ in evaluator.judged] == ["HumanEval/0", "HumanEval/1"]
    assert evaluator.prepared_for == ["HumanEval/0", "HumanEval/1"]  # the run's problems, before any attempt
    assert summary.passed == 0
    records = RunFolder(tmp_path / "run").records()
    assert [(r.status, r.tests_passed, r.tests_total) for r in records] == [(Status.FAILED, 3, 7)] * 2
    assert {a.error for a in RunFolder(tmp_path / "run").attempts()} == {"fake: 3 of 7"}
