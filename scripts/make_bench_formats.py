"""Write koderz's own BigCodeBench- and LiveCodeBench-format files (tasks and samples).

    python scripts/make_bench_formats.py

Writes ``koderz/datasets/data/bigcodebench/`` (full and hard task files, samples) and
``koderz/datasets/data/livecodebench/`` (``code_generation_lite`` rows, samples). Every
canonical BigCodeBench solution is run against its own ``TestCases`` and every LiveCodeBench
expected output comes from running the right answer, each in a fresh ``python`` process;
the script fails if a canonical solution does not pass.
"""

from __future__ import annotations

import base64
import json
import pickle
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_formats.bcb_tasks import TASKS, Spec
from bench_formats.lcb_problems import FUNCTIONAL, STDIN, Functional, Stdin

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "koderz" / "datasets" / "data"
BCB_VERSION = "koderz-v0.1"
HARD_EVERY = 4  # every 4th task is also in the hard subset
SECOND_KIND = ("raise", "prints", "sys_exit", "tamper", "loop", "os_exit", "raise", "prints")

# --------------------------------------------------------------------------- BigCodeBench


def _bcb_row(index: int, spec: Spec) -> dict[str, Any]:
    code_prompt = f"{spec.imports}\n\ndef {spec.signature}:\n"
    reqs = "".join(f"    - {lib}\n" for lib in spec.libs)
    complete = f'{code_prompt}    """\n    {spec.doc}\n\n    Requirements:\n{reqs}    """\n'
    instruct = (
        f"{spec.doc}\nThe function should output with:\n    The result described above.\n"
        f"You should write self-contained code starting with:\n```\n{code_prompt}```"
    )
    test_imports = "\n".join(x for x in ("import unittest", spec.imports, spec.test_imports) if x)
    doc_struct = {
        "description": [spec.doc],
        "notes": [],
        "params": [],
        "returns": [],
        "reqs": list(spec.libs),
        "raises": [],
        "examples": [],
    }
    return {
        "task_id": f"KoderzBCB/{index}",
        "complete_prompt": complete,
        "instruct_prompt": instruct,
        "canonical_solution": spec.body,
        "code_prompt": code_prompt,
        "test": f"{test_imports}\n\nclass TestCases(unittest.TestCase):\n{spec.tests}",
        "entry_point": "task_func",
        "doc_struct": json.dumps(doc_struct),
        "libs": str(list(spec.libs)),
    }


def _variant(row: dict[str, Any], spec: Spec, kind: str) -> str:
    head = row["code_prompt"]
    if kind == "wrong":
        return head + spec.wrong
    if kind == "raise":
        return head + "    raise RuntimeError('not implemented')\n"
    if kind == "loop":
        return head + "    while True:\n        pass\n"
    if kind == "prints":
        real = head.replace("def task_func(", "def _real_task_func(") + spec.body
        return real + "\n\ndef task_func(*args, **kwargs):\n    print(_real_task_func(*args, **kwargs))\n"
    if kind == "sys_exit":
        return "import sys\n" + head + "    sys.exit(0)\n"
    if kind == "os_exit":
        return "import os as _os\n" + head + "    _os._exit(0)\n"
    if kind == "tamper":  # a wrong answer that hides its failures from unittest's result
        return (
            "import unittest\n"
            "unittest.TestResult.addFailure = lambda self, test, err: None\n"
            "unittest.TestResult.addError = lambda self, test, err: None\n" + head + spec.wrong
        )
    raise ValueError(kind)


def _passes(row: dict[str, Any]) -> bool:
    program = row["complete_prompt"] + "\n" + row["canonical_solution"] + "\n" + row["test"]
    runner = (
        "\nimport unittest, sys\nr = unittest.TextTestRunner(verbosity=0).run("
        "unittest.TestLoader().loadTestsFromTestCase(TestCases))\nsys.exit(0 if r.wasSuccessful() else 1)\n"
    )
    with tempfile.TemporaryDirectory() as cwd:
        done = subprocess.run(
            [sys.executable, "-c", program + runner],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"},
        )
    if done.returncode:
        print(row["task_id"], done.stderr[-2000:], file=sys.stderr)
    return done.returncode == 0


def bigcodebench() -> None:
    rows, samples = [], []
    for index, spec in enumerate(TASKS):
        row = _bcb_row(index, spec)
        if not _passes(row):
            raise SystemExit(f"{row['task_id']}: the canonical solution fails its own tests")
        rows.append(row)
        canonical = row["complete_prompt"] + "\n" + row["canonical_solution"]
        samples.append({"task_id": row["task_id"], "solution": canonical, "variant": "canonical"})
        for kind in ("wrong", SECOND_KIND[index % len(SECOND_KIND)]):
            samples.append({"task_id": row["task_id"], "solution": _variant(row, spec, kind), "variant": kind})
    out = DATA / "bigcodebench"
    out.mkdir(parents=True, exist_ok=True)
    _write(out / f"bigcodebench-{BCB_VERSION}.jsonl", rows)
    _write(out / f"bigcodebench-hard-{BCB_VERSION}.jsonl", rows[::HARD_EVERY])
    _write(out / "samples.jsonl", samples)
    print(f"bigcodebench: {len(rows)} tasks, {len(samples)} samples")


# --------------------------------------------------------------------------- LiveCodeBench


def _stdout_of(program: str, stdin: str) -> str:
    done = subprocess.run([sys.executable, "-c", program], input=stdin, capture_output=True, text=True, timeout=60)
    if done.returncode:
        raise SystemExit(f"right answer failed on {stdin!r}: {done.stderr}")
    return done.stdout


def _call(problem: Functional, args: tuple[Any, ...]) -> Any:
    namespace: dict[str, Any] = {}
    exec(_solution(problem, problem.right), namespace)
    result = getattr(namespace["Solution"](), problem.func)(*args)
    return list(result) if isinstance(result, tuple) else result


def _differs(problem: Stdin | Functional) -> bool:
    """The wrong answer fails at least one test (different output, or an exception)."""
    if isinstance(problem, Stdin):
        for text in problem.inputs:
            done = subprocess.run([sys.executable, "-c", problem.wrong], input=text, capture_output=True, text=True,
                                  timeout=60, check=False)  # fmt: skip
            if done.returncode or done.stdout.split() != _stdout_of(problem.right, text).split():
                return True
        return False
    wrong = Functional(**{**problem.__dict__, "right": problem.wrong})
    for args in problem.inputs:
        try:
            if _call(wrong, args) != _call(problem, args):
                return True
        except Exception:  # noqa: BLE001 - a crash is a failure too
            return True
    return False


def _solution(problem: Functional, body: str) -> str:
    return f"from typing import List\n\nclass Solution:\n    def {problem.func}({problem.params}) -> {problem.returns}:\n{body}"


def _tests(pairs: list[dict[str, str]], public: int) -> tuple[str, str]:
    return json.dumps(pairs[:public]), json.dumps(pairs[public:])


def _compressed(text: str) -> str:
    """How the published ``code_generation_lite`` stores private tests."""
    return base64.b64encode(zlib.compress(pickle.dumps(text))).decode("ascii")


def livecodebench() -> None:
    rows, samples = [], []
    for index, problem in enumerate([*STDIN, *FUNCTIONAL]):
        month, day = 5 + index % 16, 1 + index % 27
        date = f"{2023 + (month - 1) // 12}-{(month - 1) % 12 + 1:02d}-{day:02d}T00:00:00"
        row: dict[str, Any] = {
            "question_title": problem.title,
            "question_content": problem.statement,
            "question_id": f"kz{index}",
            "contest_id": f"kzc{index // 4}",
            "contest_date": date,
            "difficulty": ("easy", "medium", "hard")[index % 3],
        }
        if isinstance(problem, Stdin):
            pairs = [{"input": i, "output": _stdout_of(problem.right, i), "testtype": "stdin"} for i in problem.inputs]
            public, private = _tests(pairs, 2)
            row |= {"platform": ("atcoder", "codeforces")[index % 2], "starter_code": "", "metadata": "{}"}
            right, wrong = problem.right, problem.wrong
            crash = "x = []\nprint(x[1])\n"
            slow = "while True:\n    pass\n"
            extra = {"whitespace": problem.right.replace("print(", "print('', ") if index % 4 == 1 else None}
        else:
            pairs = [
                {
                    "input": "\n".join(json.dumps(a) for a in args),
                    "output": json.dumps(_call(problem, args)),
                    "testtype": "functional",
                }
                for args in problem.inputs
            ]
            public, private_plain = _tests(pairs, 1)
            private = _compressed(private_plain)
            row |= {
                "platform": "leetcode",
                "starter_code": f"class Solution:\n    def {problem.func}({problem.params}) -> {problem.returns}:\n        ",
                "metadata": json.dumps({"func_name": problem.func}),
            }
            right, wrong = _solution(problem, problem.right), _solution(problem, problem.wrong)
            crash = _solution(problem, "        return [][0]\n")
            slow = _solution(problem, "        while True:\n            pass\n")
            extra = {}
        if not _differs(problem):
            raise SystemExit(f"{problem.title}: the wrong answer gives the right output on every test")
        row |= {"public_test_cases": public, "private_test_cases": private}
        rows.append(row)
        codes = {"right": right, "wrong": wrong, "crash": crash}
        if index % 4 == 0:
            codes["slow"] = slow
        codes |= {k: v for k, v in extra.items() if v}
        samples.append({"question_id": row["question_id"], "code_list": list(codes.values()), "variants": list(codes)})
    out = DATA / "livecodebench"
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "code_generation_lite-koderz-v0.1.jsonl", rows)
    _write(out / "samples.jsonl", samples)
    print(f"livecodebench: {len(rows)} problems, {sum(len(s['code_list']) for s in samples)} samples")


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


if __name__ == "__main__":
    bigcodebench()
    livecodebench()
