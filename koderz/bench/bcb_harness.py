"""Child-side harness for BigCodeBench (source text sent into the sandbox, never imported by koderz).

The sandboxed child runs this file as its "program" and calls :func:`koderz_bcb_outcome` once
per test name. The first call runs the task's suite exactly as bigcodebench 0.2.5's
``unsafe_execute`` does (a fresh ``__test__`` module holding ``sys``, ``os``, ``environ``; the
solution and the tests executed as one source; ``unittest.TestLoader().loadTestsFromTestCase``;
a plain ``unittest.TestResult``; stdout/stderr swallowed; in a temporary working directory;
``exit``/``quit`` removed, TZ=UTC, one OpenMP thread), under the harness's suite time limit.
Each later call returns one test's outcome as a plain string: ``pass`` or ``fail: ...``.
The call for ``__discovered__`` returns the test names unittest found.

Unlike bigcodebench, a run whose solution replaced anything on ``unittest``'s classes fails
every test (``tampered: ...``): bigcodebench counts such a run as passed.
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


def _snapshot(unittest):
    classes = (unittest.TestCase, unittest.TestResult, unittest.TestSuite, unittest.TestLoader)
    return {cls: dict(vars(cls)) for cls in classes}


def _tampered(before, unittest):
    for cls, attributes in before.items():
        now = vars(cls)
        for name in set(attributes) | set(now):
            if attributes.get(name, _STATE) is not now.get(name, _STATE):
                return f"tampered: unittest.{cls.__name__}.{name} was replaced"
    return None


def _run_suite():
    import builtins
    import contextlib
    import signal
    import tempfile
    import types
    import unittest

    _prepare()
    before = _snapshot(unittest)
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

    def alarm(signum, frame):
        raise _SuiteTimeout("Timed out!")

    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            saved_stdin, sys.stdin = sys.stdin, sink
            try:
                exec(compile(KZ_CODE + "\n" + KZ_TEST, "__test__.py", "exec"), module.__dict__)
                sys.modules["__test__"] = module
                suite = unittest.TestLoader().loadTestsFromTestCase(module.TestCases)
                names = sorted(t.id().split(".")[-1] for t in suite)  # type: ignore[union-attr]
                result = unittest.TestResult()
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
        tampered = _tampered(before, unittest)
        _STATE["names"] = names
        _STATE["outcomes"] = {n: tampered or outcomes.get(n, "pass") for n in names}
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
