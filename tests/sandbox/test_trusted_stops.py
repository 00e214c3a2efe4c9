"""An attempt is bounded as a whole and its stop is decided by the trusted side: CPU time across
all its processes (the cgroup's), a /tmp with an inode budget, ``timeout``/``memory`` only from what
koderz measured (never the program's exit code or the exception it raised), a verdict decided
before teardown, and a hostile neighbour that cannot change a correct program's verdict."""

from __future__ import annotations

import asyncio

import pytest

from koderz.sandbox.mechanism import Mechanism
from koderz.sandbox.sandbox import Sandbox, SandboxConfig
from tests.support.judge_attacks import fork_spinners

EXIT_124 = "import os\ndef strlen(s):\n    os._exit(124)\n"
RAISES_MEMORY_ERROR = "def strlen(s):\n    raise MemoryError('pretending')\n"
FILL_TMP = """
import os
def strlen(s):
    count = 0
    try:
        while True:
            open('/tmp/f%d' % count, 'w').close()
            count += 1
    except OSError:
        pass
    return count
"""


@pytest.fixture
def quick_sandbox(uid_base):
    # a short CPU budget; a wall-clock backstop a loaded machine does not reach first
    config = SandboxConfig(uid_base=uid_base, cpu_floor=1.0, cpu_factor=2.0, wall_slack=300.0, max_processes=2)
    sandbox = Sandbox(config)
    yield sandbox
    sandbox.close()


@pytest.mark.parametrize("fork_server", [True, False])
async def test_exit_code_124_is_the_programs_exit_not_a_timeout(fork_server, humaneval, uid_base) -> None:
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base, fork_server=fork_server))
    try:
        verdict = await sandbox.evaluate(humaneval["HumanEval/23"], EXIT_124)
    finally:
        sandbox.close()
    assert verdict.status == "error", verdict
    assert verdict.error == "the program exited (code 124) before it answered every test"


async def test_a_program_raising_memory_error_has_failed_not_run_out_of_memory(humaneval, sandbox) -> None:
    verdict = await sandbox.evaluate(humaneval["HumanEval/23"], RAISES_MEMORY_ERROR)
    assert verdict.status == "error" and verdict.error == "MemoryError: pretending", verdict


async def test_cpu_time_is_bounded_across_the_attempts_processes(humaneval, quick_sandbox) -> None:
    """Four spinners in sessions of their own while PID 1 sleeps: each is under its own rlimit,
    together they use the attempt's CPU budget, and the trusted side stops the attempt there."""
    problem = humaneval["HumanEval/23"]
    verdict = await quick_sandbox.evaluate(problem, fork_spinners(problem.entry_point, 4))
    if not verdict.isolation["cpu"].startswith("cgroup"):
        pytest.skip(f"no CPU accounting across processes here ({verdict.isolation['cpu']})")
    assert verdict.status == "timeout", verdict
    assert verdict.error is not None and verdict.error.startswith("CPU time limit of "), verdict.error


async def test_a_hostile_neighbour_does_not_change_a_correct_programs_verdict(humaneval, quick_sandbox) -> None:
    spinner_task, honest_task = humaneval["HumanEval/23"], humaneval["HumanEval/36"]
    spinner, honest = await asyncio.gather(
        quick_sandbox.evaluate(spinner_task, fork_spinners(spinner_task.entry_point)),
        quick_sandbox.evaluate(honest_task, honest_task.reference_program),
    )
    assert spinner.status == "timeout"
    assert honest.passed, honest


async def test_tmp_has_an_inode_budget_and_teardown_decides_nothing(humaneval, uid_base) -> None:
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base, tmp_inodes=2000))
    try:
        verdict = await sandbox.evaluate(humaneval["HumanEval/23"], FILL_TMP)
        await sandbox.drain()
    finally:
        sandbox.close()
    if verdict.mechanism is not None and not verdict.mechanism.namespaces:
        pytest.skip(f"{verdict.mechanism} sets no inode budget")
    assert verdict.mechanism in (Mechanism.ROOT_NAMESPACES, Mechanism.USER_NAMESPACES)
    assert verdict.status == "failed" and verdict.got is not None and int(verdict.got) < 2000, verdict
    assert verdict.isolation["tmp"] == "private tmpfs 32 MB, 2000 inodes"
