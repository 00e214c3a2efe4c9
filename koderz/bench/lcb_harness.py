"""Child-side harness for LiveCodeBench (source text sent into the sandbox; koderz imports only
:func:`normal_form`, to put the expected outputs in the same form).

The sandboxed child runs this file as its "program" and calls :func:`koderz_lcb_run` once per
test with the test's input text. It prepares the candidate as LiveCodeBench's
``testing_util`` does (``import_string`` prefix; stdin programs: the ``if __name__ ==
'__main__'`` block unwrapped and the whole program wrapped into ``wrapped_function`` with its
imports hoisted; functional: ``Solution()`` when the code has ``class Solution``) and runs each
test under its per-test alarm. It returns a plain value the trusted judge compares with the
expected one, which never enters the sandbox: stdin tests return the output's lines in
LiveCodeBench's normal form (stripped; a line of numbers as exact decimals), functional tests
``{"v": result}`` with a tuple turned into a list (compared with ``==``).

``IMPORT_STRING``, ``clean_if_name``, ``make_function`` and the stdin patches follow
LiveCodeBench's ``lcb_runner/evaluation/testing_util.py`` (MIT licence; the copy read is the one
in nvidia-livecodebench 26.3, Apache-2.0). The evaluator appends the values for ``KZ_*``.
"""

import ast
import contextlib
import json
import signal
import sys
from io import StringIO

KZ_CODE = ""
KZ_FUNC_NAME = None
KZ_TIMEOUT = 6
_STATE: dict = {}

IMPORT_STRING = (
    "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\n"
    "from heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\nfrom random import *\n"
    "from statistics import *\nfrom itertools import *\nfrom functools import *\nfrom operator import *\n"
    "from io import *\nfrom sys import *\nfrom json import *\nfrom builtins import *\nfrom typing import *\n"
    "import string\nimport re\nimport datetime\nimport collections\nimport heapq\nimport bisect\nimport copy\n"
    "import math\nimport random\nimport statistics\nimport itertools\nimport functools\nimport operator\n"
    "import io\nimport sys\nimport json\nsys.setrecursionlimit(50000)\n"
)


class TimeLimitExceeded(Exception):
    pass


def _alarm(signum, frame):
    raise TimeLimitExceeded("Time Limit Exceeded")


def clean_if_name(code):
    try:
        tree = ast.parse(code)
        last = tree.body[-1]
        if isinstance(last, ast.If) and ast.unparse(last.test).strip() == "__name__ == '__main__'":
            code = ast.unparse(tree.body[:-1]) + "\n" + ast.unparse(last.body)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - as LiveCodeBench: unparsable code is left as it is
        pass
    return code


def make_function(code):
    try:
        imports: list = []
        others: list = []
        for stmt in ast.parse(code).body:
            (imports if isinstance(stmt, (ast.Import, ast.ImportFrom)) else others).append(stmt)
        function = ast.FunctionDef(
            name="wrapped_function",
            args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
            body=others,
            decorator_list=[],
            lineno=-1,
        )
        return IMPORT_STRING + "\n" + ast.unparse(imports) + "\n" + ast.unparse(function)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - as LiveCodeBench
        return code


def _compile(code):
    import types

    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(KZ_TIMEOUT)
    try:
        module = types.ModuleType("tmp_sol", "")
        exec(code, module.__dict__)
        return module.Solution() if "class Solution" in code else module
    finally:
        signal.alarm(0)


def _method():
    if "method" not in _STATE:
        sys.set_int_max_str_digits(50000)
        if KZ_FUNC_NAME is None:
            compiled = _compile(make_function(clean_if_name(KZ_CODE)))
            _STATE["method"] = compiled.wrapped_function
        else:
            compiled = _compile(IMPORT_STRING + "\n\n" + KZ_CODE)
            _STATE["method"] = getattr(compiled, KZ_FUNC_NAME)
    return _STATE["method"]


def _run_stdin(method, text):
    from unittest.mock import mock_open, patch

    lines = iter(text.split("\n"))
    captured = StringIO()
    saved = sys.stdout
    sys.stdout = captured
    try:
        with (
            patch("builtins.open", mock_open(read_data=text)),
            patch("sys.stdin", StringIO(text)),
            patch("sys.stdin.readline", lambda *args: next(lines)),
            patch("sys.stdin.readlines", lambda *args: text.split("\n")),
            patch("sys.stdin.read", lambda *args: text),
            contextlib.suppress(SystemExit),
        ):
            method()
    finally:
        sys.stdout = saved
    return captured.getvalue()


def _decimal_key(value):
    """An exact text for a decimal that two equal decimals share (no context rounding)."""
    if value.is_zero():
        return "0"
    if value.is_infinite():
        return "-inf" if value.is_signed() else "inf"
    sign, digits, exponent = value.as_tuple()
    digits = list(digits)
    while digits and digits[-1] == 0:
        digits.pop()
        exponent += 1
    return ("-" if sign else "") + "".join(map(str, digits)) + "e" + str(exponent)


def normal_form(output):
    """LiveCodeBench's comparison as a value: two outputs are accepted as equal by its
    ``grade_stdio`` exactly when their normal forms are equal."""
    from decimal import Decimal

    form = []
    for line in output.strip().split("\n"):
        line = line.strip()
        try:
            numbers = [Decimal(token) for token in line.split()]
        except Exception:  # noqa: BLE001 - not a line of numbers: compared as text
            numbers = None
        if numbers is None or any(n.is_nan() for n in numbers):
            form.append(["text", line])
        else:
            form.append(["numbers", [_decimal_key(n) for n in numbers]])
    return form


def koderz_lcb_run(text):
    """Run one test on input ``text``; its output's normal form (stdin) or ``{"v": result}``.
    After a test raised or ran out of time the later ones are not run (LiveCodeBench stops at
    the first failure): each raises at once."""
    if "stopped" in _STATE:
        raise RuntimeError(_STATE["stopped"])
    method = _method()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(KZ_TIMEOUT)
    try:
        if KZ_FUNC_NAME is None:
            return normal_form(_run_stdin(method, text))
        args = [json.loads(line) for line in text.split("\n")]
        result = method(*args)
    except BaseException as exc:
        _STATE["stopped"] = f"not run: an earlier test failed ({type(exc).__name__})"
        raise
    finally:
        signal.alarm(0)
    return {"v": list(result) if isinstance(result, tuple) else result}
