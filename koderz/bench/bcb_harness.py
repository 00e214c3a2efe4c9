"""Child-side harness for BigCodeBench (source text sent into the sandbox, never imported by koderz).

The sandboxed child runs this file as its "program" and calls :func:`koderz_bcb_outcome` once
per test name. The first call runs the task's suite exactly as bigcodebench 0.2.5's
``unsafe_execute`` does (a fresh ``__test__`` module holding ``sys``, ``os``, ``environ``; the
solution and the tests executed as one source; ``unittest.TestLoader().loadTestsFromTestCase``;
a plain ``unittest.TestResult``; stdout/stderr swallowed; in a temporary working directory;
``exit``/``quit`` removed, TZ=UTC, one OpenMP thread), under the harness's suite time limit.
Each later call returns one test's outcome as a plain string: ``pass`` or ``fail: ...``.
The call for ``__discovered__`` returns the test names unittest found.

Unlike bigcodebench, a run whose solution replaced anything in ``unittest`` (a module, a class's
attribute, the module itself in ``sys.modules``), or slipped a class of its own under the tests'
``TestCases``, fails every test (``tampered: ...``), and a skipped test fails (``skipped: ...``):
bigcodebench counts such runs as passed.
The suite runs in a forked process holding no descriptor of the sandbox's result stream (so
the candidate cannot write answers into it); like bigcodebench, a solution that rewrites the
harness's own code inside that process can still report what it likes.
The evaluator appends the task's values for the ``KZ_*`` names below.
"""

import os
import sys

KZ_CODE = ""
KZ_TEST = ""
KZ_LIBRARY_PATHS: list = []
KZ_TIME_LIMIT = 240.0
MAX_REPORT = 4 * 1024 * 1024  # bytes of the forked run's report
_STATE: dict = {}


class _Sink:
    """bigcodebench's WriteOnlyStringIO, bounded: writes vanish, reads fail."""

    def write(self, text):
        return len(text)

    def writelines(self, lines):
        pass

    def flush(self):
        pass

    def isatty(self):
        return False

    def read(self, *args, **kwargs):
        raise OSError

    readline = readlines = read

    def readable(self):
        return False


class _SuiteTimeout(Exception):
    pass


def _prepare():
    sys.path[:0] = [p for p in KZ_LIBRARY_PATHS if p not in sys.path]
    os.environ.update(
        TZ="UTC", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg",
        MPLCONFIGDIR="/tmp/.matplotlib", TF_CPP_MIN_LOG_LEVEL="3",
    )  # fmt: skip
    import time

    time.tzset()


def _snapshot():
    """``unittest``'s modules, their namespaces and their classes' namespaces, before the solution runs."""
    modules = {n: m for n, m in sys.modules.items() if n == "unittest" or n.startswith("unittest.")}
    classes = {v for m in modules.values() for v in vars(m).values() if isinstance(v, type)}
    classes = {c for c in classes if c.__module__.startswith("unittest")}
    return modules, {m: dict(vars(m)) for m in modules.values()}, {c: dict(vars(c)) for c in classes}


def _tampered(before, test_case, test_classes):
    """Why the run cannot be trusted (None: nothing of ``unittest`` was replaced)."""
    modules, namespaces, classes = before
    for name, module in modules.items():
        if sys.modules.get(name) is not module:
            return f"tampered: sys.modules[{name!r}] was replaced"
    for scope, attributes in (*namespaces.items(), *classes.items()):
        now = vars(scope)
        for name in set(attributes) | (set(now) if isinstance(scope, type) else set()):
            if attributes.get(name, _STATE) is not now.get(name, _STATE):
                return f"tampered: {scope.__name__}.{name} was replaced"
    seen = set()
    for cls in test_case.__mro__:  # the tests' own classes (each once), then unittest's
        if cls in classes or cls is object:
            continue
        if cls.__module__ == "__test__" and cls.__name__ in test_classes and cls.__name__ not in seen:
            seen.add(cls.__name__)
            continue
        if cls.__module__ == "__test__":
            return f"tampered: TestCases inherits from {cls.__qualname__}, which the tests do not define"
    return None


def _test_classes():
    import ast

    return {node.name for node in ast.walk(ast.parse(KZ_TEST)) if isinstance(node, ast.ClassDef)}


def _run_suite():
    import builtins
    import contextlib
    import signal
    import tempfile
    import types
    import unittest

    _prepare()
    before = _snapshot()
    loader, result_type = unittest.TestLoader, unittest.TestResult  # the solution may rebind them
    outcomes = {}
    cwd = os.getcwd()
    workdir = tempfile.mkdtemp()
    os.chdir(workdir)
    exit_, quit_ = getattr(builtins, "exit", None), getattr(builtins, "quit", None)  # python -S has neither
    setattr(builtins, "exit", None)  # noqa: B010 - as bigcodebench's reliability_guard
    setattr(builtins, "quit", None)  # noqa: B010
    sink = _Sink()
    module = types.ModuleType("__test__")
    module.__dict__.update(
        {"__builtins__": builtins, "__file__": "__test__.py", "__package__": None, "__doc__": None,
         "sys": sys, "os": os, "environ": os.environ}
    )  # fmt: skip

    started = set()

    class Result(result_type):  # type: ignore[misc, valid-type]
        def startTest(self, test):
            started.add(test.id().split(".")[-1])
            super().startTest(test)

    def alarm(signum, frame):
        result.stop()  # bigcodebench's run ends here too (its process is killed): no later test runs
        raise _SuiteTimeout("Timed out!")

    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            saved_stdin, sys.stdin = sys.stdin, sink
            try:
                exec(compile(KZ_CODE + "\n" + KZ_TEST, "__test__.py", "exec"), module.__dict__)
                sys.modules["__test__"] = module
                suite = loader().loadTestsFromTestCase(module.TestCases)
                names = sorted(t.id().split(".")[-1] for t in suite)  # type: ignore[union-attr]
                result = Result()
                signal.signal(signal.SIGALRM, alarm)
                signal.setitimer(signal.ITIMER_REAL, KZ_TIME_LIMIT)
                try:
                    suite.run(result)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            finally:
                sys.stdin = saved_stdin
        for test, trace in result.failures:
            outcomes[test.id().split(".")[-1]] = "fail: " + _last_line(trace)
        for test, trace in result.errors:
            outcomes[test.id().split(".")[-1]] = "error: " + _last_line(trace)
        for test, reason in result.skipped:
            outcomes[test.id().split(".")[-1]] = "skipped: " + str(reason)[:2000]
        tampered = _tampered(before, module.TestCases, _test_classes())
        _STATE["names"] = names
        missed = "fail: not run (the suite's time limit expired, or the run was stopped)"
        _STATE["outcomes"] = {n: tampered or outcomes.get(n, "pass" if n in started else missed) for n in names}
    except BaseException as exc:  # noqa: BLE001 - bigcodebench: any failure outside the tests fails them all
        _STATE["error"] = f"{type(exc).__name__}: {exc}"[:2000]
    finally:
        setattr(builtins, "exit", exit_)  # noqa: B010
        setattr(builtins, "quit", quit_)  # noqa: B010
        with contextlib.suppress(OSError):
            os.chdir(cwd)


def _last_line(trace):
    """The exception's own lines (after the traceback's indented frames), bounded."""
    lines = str(trace).rstrip().splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith(" ")]
    return "\n".join(lines[frames[-1] + 1 :] if frames else lines[-1:])[:2000]


def _suite_in_fork():
    """Run the suite in a forked process that holds no descriptor but stdin/out/err and a pipe
    of its own: the candidate cannot write into the sandbox's result stream. Its report (JSON,
    bounded) is checked for shape; a missing or malformed report is an error."""
    import json

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        os.closerange(3, write_fd)
        os.closerange(write_fd + 1, 1 << 16)
        _run_suite()
        data = json.dumps(_STATE).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view) :]
        os._exit(0)
    os.close(write_fd)
    chunks, size = [], 0
    while size <= MAX_REPORT:
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    try:
        report = json.loads(b"".join(chunks)) if size <= MAX_REPORT else None
    except ValueError:
        report = None
    if isinstance(report, dict) and isinstance(report.get("error"), str):
        _STATE["error"] = report["error"][:2000]
    elif (
        isinstance(report, dict)
        and isinstance(report.get("names"), list)
        and all(isinstance(n, str) for n in report["names"])
        and isinstance(report.get("outcomes"), dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in report["outcomes"].items())
    ):
        _STATE.update(names=report["names"], outcomes=report["outcomes"])
    else:
        _STATE["error"] = "the test run ended without a well-formed report"


def koderz_bcb_outcome(name):
    """``pass`` or why the test ``name`` failed; the sorted test names for ``__discovered__``."""
    if not _STATE:
        _suite_in_fork()
    if "error" in _STATE:
        raise RuntimeError(_STATE["error"])
    if name == "__discovered__":
        return _STATE["names"]
    return _STATE["outcomes"].get(name, "fail: not reported")
