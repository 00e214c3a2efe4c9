"""What a verdict tells the model and the experiment: program line numbers, whole failed
checks, one traceback header; harness failures raise instead of becoming a verdict."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from koderz.errors import SandboxError
from koderz.framing import Kind
from koderz.sandbox.forkserver import ForkServer
from koderz.sandbox.sandbox import CHILD_ENV, Sandbox, SandboxConfig, child_source


async def test_traceback_counts_the_program_as_written(humaneval, sandbox) -> None:
    problem = humaneval["HumanEval/2"]  # its prompt has no preamble lines of its own
    program = "\n" * 12 + "def truncate_number(number):\n    return number / 0\n"  # the error is on line 14
    verdict = await sandbox.evaluate(problem, program)
    assert verdict.status == "error" and verdict.error.startswith("ZeroDivisionError")
    assert 'File "candidate.py", line 14, in truncate_number' in verdict.traceback
    assert "return number / 0" in verdict.traceback  # the program's own source line
    assert verdict.feedback().count("Traceback (most recent call last)") == 1


async def test_traceback_with_a_preamble(humaneval, sandbox) -> None:
    problem = humaneval["HumanEval/10"]  # the prompt defines is_palindrome before make_palindrome
    program = "def make_palindrome(string):\n    x = 1\n    raise ValueError(string)\n"
    verdict = await sandbox.evaluate(problem, program)
    assert 'File "candidate.py", line 3, in make_palindrome' in verdict.traceback


async def test_failed_check_is_the_whole_assertion(humaneval, sandbox) -> None:
    problem = humaneval["HumanEval/1"]  # its first assert spans three lines
    verdict = await sandbox.evaluate(problem, "def separate_paren_groups(paren_string):\n    return []\n")
    assert verdict.status == "failed" and verdict.got == "[]"
    assert verdict.expected.endswith(
        "failed check: assert candidate('(()()) ((())) () ((())()())') == [ '(()())', '((()))', '()', '((())()())' ]"
    )


async def test_a_check_that_stops_at_its_first_assert_counts_only_what_ran(humaneval, sandbox) -> None:
    """HumanEval's check stops at its first failing assert: the tests after it never ran, and the
    feedback says so instead of "0/N tests passed"."""
    problem = humaneval["HumanEval/1"]
    verdict = await sandbox.evaluate(problem, "def separate_paren_groups(paren_string):\n    return []\n")
    total = len(problem.inputs)
    assert (verdict.status, verdict.tests_passed, verdict.tests_run, verdict.tests_total) == ("failed", 0, 1, total)
    assert verdict.feedback().startswith(
        f"Status: failed after 1 of {total} tests ran (0 passed; the other {total - 1} were not run)."
    )


async def test_a_program_that_runs_every_test_reports_its_count(humaneval_plus, sandbox) -> None:
    problem = humaneval_plus["HumanEval/2"]
    verdict = await sandbox.evaluate(problem, "def truncate_number(number):\n    return 0.5\n")
    total = len(problem.inputs)
    assert verdict.status == "failed" and verdict.tests_run == total and 0 < verdict.tests_passed < total
    assert verdict.feedback().startswith(f"Status: failed ({verdict.tests_passed}/{total} tests passed).")
    # every failing test by its index, in order (at most 100): exactly the inputs whose answer is not 0.5
    wrong = [str(i) for i, args in enumerate(problem.inputs) if args[0] % 1 != 0.5]
    assert list(verdict.failed_tests) == wrong[:100] and len(wrong) == total - verdict.tests_passed


async def test_a_check_names_the_assert_it_failed_and_a_stopped_test_is_listed(humaneval, fast_sandbox) -> None:
    problem = humaneval["HumanEval/1"]
    failed = await fast_sandbox.evaluate(problem, "def separate_paren_groups(paren_string):\n    return []\n")
    assert failed.failed_tests == ("0",)
    looping = await fast_sandbox.evaluate(problem, "def separate_paren_groups(paren_string):\n    while True: pass\n")
    assert looping.status == "timeout" and looping.failed_tests == ("0",) and looping.tests_run == 1


async def test_a_program_that_does_not_load_ran_no_test(humaneval, sandbox) -> None:
    verdict = await sandbox.evaluate(humaneval["HumanEval/2"], "def truncate_number(number):\n    return (\n")
    assert verdict.tests_run == verdict.tests_passed == 0
    assert verdict.feedback().startswith(f"Status: error before any of the {verdict.tests_total} tests ran.")


async def test_a_missing_entry_point_is_named_as_such(humaneval, sandbox) -> None:
    problem = humaneval["HumanEval/10"]  # the prompt defines is_palindrome; the answer only a helper
    verdict = await sandbox.evaluate(problem, "def palindrome_suffix(string):\n    return string\n")
    assert verdict.status == "error" and not verdict.passed
    assert verdict.error == "NameError: the program defines no make_palindrome (the entry point the tests call)"
    assert "defines no make_palindrome" in verdict.feedback()


async def test_syntax_error_line_is_the_programs(humaneval, sandbox) -> None:
    problem = humaneval["HumanEval/2"]
    verdict = await sandbox.evaluate(problem, "def truncate_number(number):\n    return (\n")
    assert verdict.status == "error" and verdict.error.startswith("SyntaxError")
    assert 'File "candidate.py", line 2' in verdict.traceback


async def test_judge_server_death_is_a_harness_error(humaneval, uid_base) -> None:
    """A judge zygote that dies mid-attempt is not the program's fault: SandboxError, then recovery."""
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base))
    problem = humaneval["HumanEval/23"]
    try:
        assert (await sandbox.evaluate(problem, problem.reference_program)).passed
        slow = "import time\ndef strlen(string):\n    time.sleep(30)\n    return len(string)\n"
        attempt = asyncio.ensure_future(sandbox.evaluate(problem, slow))
        await asyncio.sleep(0.5)
        judges = sandbox.helper_pids().judge_server
        assert judges is not None
        os.kill(judges, signal.SIGKILL)  # the sandbox started it for this test
        with pytest.raises(SandboxError, match="judge server"):
            await asyncio.wait_for(attempt, 60)
        assert (await sandbox.evaluate(problem, problem.reference_program)).passed  # a new judge server
    finally:
        sandbox.close()


async def test_fork_server_death_mid_attempt_is_a_harness_error(humaneval, uid_base) -> None:
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base))
    problem = humaneval["HumanEval/23"]
    try:
        assert (await sandbox.evaluate(problem, problem.reference_program)).passed
        slow = "import time\ndef strlen(string):\n    time.sleep(30)\n    return len(string)\n"
        attempt = asyncio.ensure_future(sandbox.evaluate(problem, slow))
        await asyncio.sleep(0.5)
        zygote = sandbox.helper_pids().fork_server
        assert zygote is not None
        os.kill(zygote, signal.SIGKILL)
        with pytest.raises(SandboxError, match="fork server"):
            await asyncio.wait_for(attempt, 60)
    finally:
        sandbox.close()


async def test_zygote_never_signals_a_pid_it_does_not_own(humaneval, uid_base) -> None:
    """``KILL <pid>`` / ``TERMINATE <pid>`` for a process the zygote did not fork (or already reaped) do nothing."""
    zygote = ForkServer(child_source(fork_server=True), CHILD_ENV)
    await zygote.start()
    bystander = await asyncio.create_subprocess_exec("sleep", "60", start_new_session=True)
    try:
        zygote.signal(bystander.pid, Kind.KILL)
        zygote.signal(bystander.pid, Kind.TERMINATE)
        results_r, results_w = os.pipe()
        try:
            attempt = await zygote.spawn(results_w)  # the zygote handled both and still forks
        finally:
            os.close(results_w)
        attempt.stdin.close()  # no job: the attempt ends
        await asyncio.wait_for(attempt.wait(), 60)
        attempt.close()
        os.close(results_r)
        assert bystander.returncode is None
    finally:
        bystander.kill()
        await bystander.wait()
        zygote.close()
