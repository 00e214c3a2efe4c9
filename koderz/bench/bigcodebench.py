"""BigCodeBench judging as bigcodebench 0.2.5 judges: the task's ``unittest`` suite runs once
inside the sandboxed child (``bcb_harness``); each test's outcome travels back as a plain string;
the trusted judge passes the task only when the names the suite ran equal the names of the
task's ``TestCases`` and every test reports ``pass``. A test never reported fails.

Time limit: the suite runs under bigcodebench's own per-task limit (``TIMEOUT_LIMIT`` = 240 s,
plus its 1 s; ``dataset.time_limit`` sets another), which is also the attempt's CPU budget.
"""

from __future__ import annotations

import ast
import site
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, replace

from koderz.bench.harness import (
    SandboxEvaluator,
    failing_argument,
    harness_problem,
    harness_program,
    judged_value,
    reference_seconds_for,
    with_preamble,
)
from koderz.datasets.bigcodebench import task_of
from koderz.datasets.problem import Problem
from koderz.sandbox.mechanism import Containment
from koderz.sandbox.sandbox import Sandbox, SandboxConfig
from koderz.sandbox.verdict import Verdict
from koderz.vocab import Detail, Status

ENTRY = "koderz_bcb_outcome"
DISCOVERED = "__discovered__"
TIMEOUT_LIMIT = 240.0  # bigcodebench.eval.utils.TIMEOUT_LIMIT
SUBMODULES = {"matplotlib": ("matplotlib.pyplot",)}  # imported by the tests beneath a declared lib
THREADED_LIBS = frozenset({"tensorflow", "torch", "keras"})  # start threads on import: never preloaded


@dataclass(frozen=True)
class BigCodeBenchJudging:
    time_limit: float = TIMEOUT_LIMIT  # seconds for the whole suite (bigcodebench adds 1)
    library_paths: tuple[str, ...] = ()  # where the tasks' libraries are; () = this interpreter's site-packages


def library_paths(judging: BigCodeBenchJudging) -> tuple[str, ...]:
    return judging.library_paths or tuple(site.getsitepackages())


def sandbox_config(base: SandboxConfig, judging: BigCodeBenchJudging, preload: Sequence[str] = ()) -> SandboxConfig:
    """``base`` with the libraries bound read-only into the child's root, and ``preload`` (e.g.
    :func:`preload_modules`) imported once by the fork server instead of once per attempt. Always
    ``detail=full``: the suite runs whole at the first call, so stopping at the first failing test
    saves nothing and would leave the later tests' outcomes (counted as run) unread."""
    return replace(base, library_paths=library_paths(judging), preload=tuple(preload), detail=Detail.FULL)


def preload_modules(problems: Iterable[Problem]) -> tuple[str, ...]:
    """The modules the tasks declare (``libs``) plus what their tests import beneath them
    (``matplotlib.pyplot``), for the fork server to preload; libraries that start threads
    when imported are left to each attempt (a zygote that forks must stay single-threaded)."""
    names = {lib for problem in problems for lib in task_of(problem).libs} - THREADED_LIBS
    return tuple(sorted(names | {sub for name in names for sub in SUBMODULES.get(name, ())}))


def suite_test_names(test_source: str) -> list[str]:
    """The names unittest's loader finds on ``TestCases`` (sorted), read from the source."""
    tree = ast.parse(test_source)
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    names: set[str] = set()
    pending = ["TestCases"]
    while pending:
        node = classes.get(pending.pop())
        if node is None:
            continue
        names |= {
            f.name
            for f in node.body
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name.startswith("test")
        }
        pending += [b.id for b in node.bases if isinstance(b, ast.Name)]
    return sorted(names)


class BigCodeBenchEvaluator(SandboxEvaluator):
    """The ``Evaluator`` of ``dataset=bigcodebench``: the task's suite run in ``sandbox`` (whose
    ``library_paths`` hold the tasks' libraries)."""

    def __init__(self, sandbox: Sandbox, judging: BigCodeBenchJudging | None = None) -> None:
        super().__init__(sandbox)
        self.judging = judging or BigCodeBenchJudging(library_paths=sandbox.config.library_paths)

    @classmethod
    def start(cls, config: SandboxConfig, *, time_limit: float = TIMEOUT_LIMIT) -> BigCodeBenchEvaluator:
        """For ``EVALUATORS``: the libraries are ``config.library_paths`` (none: this interpreter's);
        ``time_limit``: ``dataset.time_limit``."""
        judging = BigCodeBenchJudging(time_limit=time_limit, library_paths=config.library_paths)
        return cls(Sandbox(sandbox_config(config, judging)), judging)

    async def prepare(self, problems: Awaitable[Sequence[Problem]] | None = None) -> Containment:
        """Start the sandbox with the run's declared libraries preloaded in its fork server (unless
        its config already names what to preload); nothing has started in it before."""
        modules = preload_modules(await problems) if problems is not None else ()
        if modules and not self.sandbox.config.preload:
            unstarted, self.sandbox = self.sandbox, Sandbox(replace(self.sandbox.config, preload=modules))
            unstarted.close()
        return await self.sandbox.prepare()

    async def evaluate(self, problem: Problem, program: str, *, preamble: str | None = None) -> Verdict:
        """The verdict per test of the task's ``TestCases`` (``preamble`` None: the solution alone, as
        bigcodebench runs it)."""
        task = task_of(problem)
        names = suite_test_names(task.test)
        limit = self.judging.time_limit + 1
        harness = harness_program(
            "bcb_harness",
            {
                "KZ_CODE": with_preamble(program, preamble),
                "KZ_TEST": task.test,
                "KZ_LIBRARY_PATHS": list(library_paths(self.judging)),
                "KZ_TIME_LIMIT": limit,
            },
        )
        judged = harness_problem(
            problem,
            program_entry=ENTRY,
            inputs=[(DISCOVERED,), *((n,) for n in names)],
            expected=[names, *(["pass"] * len(names))],
            reference_seconds=reference_seconds_for(self.sandbox.config, limit + 1),
        )
        return per_test(await self.sandbox.evaluate(judged, harness), names)


def per_test(verdict: Verdict, names: Sequence[str]) -> Verdict:
    """The harness's verdict restated per test of the task (``names``, sorted): the first failing
    test's name in ``failing_input``, why in ``error``, every failing test in ``failed_tests``; a
    suite that ran other tests than declared fails."""
    total = len(names)
    argument = failing_argument(verdict.failing_input)
    failing = None if argument is None else str(argument)
    discovery_failed = failing == DISCOVERED
    passed_tests = verdict.tests_passed if discovery_failed else max(verdict.tests_passed - 1, 0)
    outcome = judged_value(verdict.got)
    message = outcome if isinstance(outcome, str) else (verdict.got or verdict.error)
    if discovery_failed:
        failing = None
        if verdict.got is not None:
            message = f"the suite ran other tests than TestCases declares: {verdict.got}"
    passed = verdict.passed and verdict.tests_total == total + 1
    return replace(
        verdict,
        passed=passed,
        status=verdict.status if passed or not verdict.passed else Status.FAILED,
        tests_passed=min(passed_tests, total),
        tests_run=0 if discovery_failed else total,  # the suite runs whole, before any outcome is read
        tests_total=total,
        failing_input=failing,
        expected=None,
        got=None,
        error=message,
        # the harness's inputs are the discovery check, then one per test name
        failed_tests=() if discovery_failed else tuple(names[int(i) - 1] for i in verdict.failed_tests if i != "0"),
    )
