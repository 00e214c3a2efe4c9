"""Each input's CPU time budget, from the canonical solution's measured time (EvalPlus's rule).

``max(input_floor, input_factor x t x slowness)``: t is the canonical solution's CPU time on
that input, measured once with the ground truth; slowness is this machine's calibration
workload against the one stored with it (never below 1). A wrong answer that loops is cut at
its first slow input, not at the attempt's CPU limit; a cut is an error, never a pass.
"""

from __future__ import annotations

import asyncio
import dataclasses

from koderz.datasets.calibration import workload_seconds
from koderz.sandbox.sandbox import Sandbox, SandboxConfig
from koderz.vocab import Detail
from tests.support.judging import judged_once

LOOPS = """
def has_close_elements(numbers, threshold):
    while True:
        pass
"""


def test_budgets_follow_the_reference_times_with_evalplus_factor_and_floor(humaneval_plus) -> None:
    problem = humaneval_plus["HumanEval/0"]
    assert len(problem.input_seconds) == len(problem.inputs) and problem.calibration > 0
    slow_machine = dataclasses.replace(problem, input_seconds=(0.0, 0.5, 2.0), inputs=problem.inputs[:3])
    budgets = Sandbox(SandboxConfig()).input_budgets(slow_machine)
    assert budgets is not None
    assert budgets[0] == 1.0  # the floor
    assert budgets[2] >= 8.0 and budgets[2] >= budgets[1] * 3.99  # 4 x the reference, scaled by >= 1
    assert Sandbox(SandboxConfig(input_factor=0)).input_budgets(problem) is None


def test_a_slower_machine_widens_every_budget(humaneval_plus) -> None:
    problem = dataclasses.replace(
        humaneval_plus["HumanEval/0"], inputs=[(1,)], input_seconds=(1.0,), calibration=workload_seconds() / 8
    )
    budgets = Sandbox(SandboxConfig()).input_budgets(problem)
    assert budgets is not None and budgets[0] > 4.0 * 2  # measured here as (about) 8x slower


def test_humaneval_check_replay_has_no_per_input_budget(humaneval) -> None:
    assert Sandbox(SandboxConfig()).input_budgets(humaneval["HumanEval/0"]) is None


def test_a_loop_is_cut_at_its_input_budget_not_at_the_attempt_limit(humaneval_plus, uid_base: int) -> None:
    """The attempt's CPU limit is made far larger than the per-input budget: the verdict is the
    cut of the first input (an error naming its budget), never a timeout and never a pass."""
    problem = humaneval_plus["HumanEval/0"]
    config = SandboxConfig(uid_base=uid_base, detail=Detail.FIRST_FAILURE, cpu_floor=120.0)
    verdict = judged_once(config, problem, LOOPS)
    assert (verdict.status, verdict.passed, verdict.tests_passed, verdict.base_passed) == ("error", False, 0, False)
    assert verdict.error is not None and "over this input's CPU time budget of 1 s" in verdict.error


def test_without_input_budgets_the_loop_runs_to_the_attempt_limit(humaneval_plus, uid_base: int) -> None:
    problem = humaneval_plus["HumanEval/0"]
    config = SandboxConfig(uid_base=uid_base, input_factor=0, cpu_floor=1.0, cpu_factor=0.0)
    verdict = judged_once(config, problem, LOOPS)
    assert (verdict.status, verdict.passed) == ("timeout", False)


CATCHES_THE_CUT = """
calls = []
def has_close_elements(numbers, threshold):
    if not calls:  # the first input only: loop, swallow the cut, then answer right
        calls.append(1)
        try:
            while True:
                pass
        except BaseException:
            pass
    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for j, b in enumerate(numbers) if i != j)
"""


def test_an_answer_given_after_catching_the_cut_is_still_over_budget(humaneval_plus, uid_base: int) -> None:
    """The cut is raised into the candidate, which may catch it and return the right answer: the
    input is still reported over its budget (an error), not judged on that late answer."""
    problem = humaneval_plus["HumanEval/0"]
    config = SandboxConfig(uid_base=uid_base, detail=Detail.FIRST_FAILURE, cpu_floor=120.0)
    verdict = judged_once(config, problem, CATCHES_THE_CUT)
    assert (verdict.status, verdict.passed, verdict.tests_passed) == ("error", False, 0)
    assert verdict.error is not None and "over this input's CPU time budget" in verdict.error


def test_prepare_measures_the_machine_speed_that_scales_the_budgets(humaneval_plus, uid_base: int) -> None:
    """The calibration workload is timed while the sandbox prepares (off the event loop), once;
    the budgets then use that figure and are never tighter than where the times were measured."""

    async def prepared() -> Sandbox:
        sandbox = Sandbox(SandboxConfig(uid_base=uid_base))
        assert sandbox.speed is None
        try:
            await sandbox.prepare(asyncio.sleep(0, [humaneval_plus["HumanEval/0"]]))
        finally:
            sandbox.close()
        return sandbox

    sandbox = asyncio.run(prepared())
    speed = sandbox.speed
    assert speed is not None and speed > 0
    slower_here = dataclasses.replace(
        humaneval_plus["HumanEval/0"], inputs=[(1,)], input_seconds=(1.0,), calibration=speed / 8
    )
    assert sandbox.input_budgets(slower_here) == [4.0 * 8]
    faster_here = dataclasses.replace(slower_here, calibration=speed * 8)
    assert sandbox.input_budgets(faster_here) == [4.0]  # never scaled below 1
    assert sandbox.speed == speed  # measured once


def test_humaneval_alone_is_prepared_without_timing_the_machine(humaneval, uid_base: int) -> None:
    async def prepared() -> Sandbox:
        sandbox = Sandbox(SandboxConfig(uid_base=uid_base))
        try:
            await sandbox.prepare(asyncio.sleep(0, [humaneval["HumanEval/0"]]))
        finally:
            sandbox.close()
        return sandbox

    assert asyncio.run(prepared()).speed is None
