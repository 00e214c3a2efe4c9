"""The judge server's pool: judges reused from attempt to attempt, each job within a budget of its own."""

from __future__ import annotations

import asyncio
from pathlib import Path

from koderz.sandbox.sandbox import Sandbox, SandboxConfig
from tests.support.judge_attacks import COLLIDING, forging

BIG_WRONG_FIRST_ANSWER = (
    "{real}\n_real = {entry}\n_calls = [0]\n"
    "def {entry}(*args):\n"
    "    _calls[0] += 1\n"
    "    return list(range(10**12, 10**12 + 500_000)) if _calls[0] == 1 else _real(*args)\n"
)


def judge_pids(sandbox: Sandbox) -> set[int]:
    """The judge server's children (its judges), from /proc."""
    server = sandbox.helper_pids().judge_server
    assert server is not None
    children = Path(f"/proc/{server}/task/{server}/children").read_text().split()
    return {int(pid) for pid in children}


async def test_one_judge_takes_attempt_after_attempt_each_with_the_whole_budget(humaneval_plus, uid_base) -> None:
    """Ten attempts one after the other, each answering its first test with a wrong list of half a
    million ints (about 0.2 s of the judge's CPU to decode and compare: a 5x margin under the
    budget, kept on a loaded machine), under a CPU budget of 1 s per attempt: one judge takes all
    ten (no fork per attempt), and each is judged `failed`, not killed at the budget, so the
    budget is re-armed for every job (a budget spanning the judge's life, 2 s of work, would end it
    about halfway)."""
    problem = humaneval_plus["HumanEval/21"]
    program = BIG_WRONG_FIRST_ANSWER.format(real=problem.reference_program, entry=problem.entry_point)
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base, judge_cpu_seconds=1))
    seen: list[set[int]] = []
    try:
        for _ in range(10):
            verdict = await sandbox.evaluate(problem, program)
            assert verdict.status == "failed", verdict.error
            assert verdict.tests_passed == len(problem.inputs) - 1
            seen.append(judge_pids(sandbox))
        assert (await sandbox.evaluate(problem, problem.reference_program)).passed
    finally:
        sandbox.close()
    assert len(seen[0]) == 1 and all(pids == seen[0] for pids in seen), seen


async def test_a_judge_killed_at_its_budget_is_replaced_and_the_next_attempt_judged(humaneval_plus, uid_base) -> None:
    """A set of colliding ints costs its judge more than the 1 s budget: the kernel kills that
    judge, the attempt is an `error` naming the budget, and the next attempt is judged by a new
    judge (the killed one is gone from the server's children)."""
    problem = humaneval_plus["HumanEval/21"]
    colliding_set = "'V 0 ' + __import__('json').dumps({'t': 'set', 'v': " + COLLIDING + "}, separators=(',', ':'))"
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base, judge_cpu_seconds=1, max_items=100_000))
    try:
        assert (await sandbox.evaluate(problem, problem.reference_program)).passed
        first = judge_pids(sandbox)
        verdict = await sandbox.evaluate(problem, forging(problem, colliding_set, 0))
        assert verdict.status == "error" and "CPU budget of 1 s" in (verdict.error or ""), verdict.error
        assert (await sandbox.evaluate(problem, problem.reference_program)).passed
        after = judge_pids(sandbox)
    finally:
        sandbox.close()
    assert len(first) == 1 and after and not first & after, (first, after)


async def test_the_servers_start_while_the_first_attempt_is_set_up(humaneval, uid_base) -> None:
    """``prepare`` (and ``evaluate``) begin the judge server's and the fork server's start-up while
    the containment is probed; the first attempt then uses those same servers."""
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base))
    try:
        await sandbox.prepare()
        helpers = sandbox.helper_pids()
        assert helpers.judge_server is not None and helpers.fork_server is not None
        problem = humaneval["HumanEval/0"]
        assert (await sandbox.evaluate(problem, problem.reference_program)).passed
        assert sandbox.helper_pids() == helpers  # not started twice
        # ps shows each helper's command, not the ~30 KB program it runs (read from stdin, or imported)
        for pid in (helpers.judge_server, helpers.fork_server):
            command = await asyncio.to_thread(Path(f"/proc/{pid}/cmdline").read_bytes)
            assert len(command) < 1024 and b"def " not in command, command[:300]
    finally:
        sandbox.close()
