"""How koderz reads a model's answer under the ``evalplus`` protocol, against EvalPlus's sanitizer.

For each of the 2,705 real model answers of ``shared/data/real-llm-humaneval-samples.jsonl.gz``,
read two ways — as a fresh answer (a server that did not continue the prefilled response) and as
the continuation of the prefilled ```python fence (the code, the closing fence, a sentence) —
it compares the program koderz's ``evalplus`` reading gives with ``evalplus.sanitize.sanitize``
(evalplus 0.3.1): the same entry-point function; every statement EvalPlus keeps kept by koderz;
and, for koderz's own reading, the answers that take imports or helpers from the prompt (which
EvalPlus's reading does not restore). It also times both readers per answer and on answers of
growing length (EvalPlus's ``code_extract`` parses every pair of lines).

    python benchmarks/evalplus_reading.py        # table on stdout, JSON in benchmarks/results/
"""

from __future__ import annotations

import ast
import gzip
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, product_state
from koderz.datasets.files import data_file
from koderz.datasets.problem import Problem
from koderz.extract import extract
from koderz.prompts import PromptStyle
from koderz.vocab import Protocol

REPO = Path(__file__).resolve().parents[1]
SAMPLES = next(
    (
        p / "shared" / "data" / "real-llm-humaneval-samples.jsonl.gz"
        for p in REPO.parents[:2]
        if (p / "shared").is_dir()
    ),
    REPO.parent / "shared" / "data" / "real-llm-humaneval-samples.jsonl.gz",
)
RESULT = REPO / "benchmarks" / "results" / "evalplus_reading.json"
EVALPLUS = PromptStyle(Protocol.EVALPLUS, cot=False)
CLOSING = "\n```\n\nThe function above solves the task."


def problems() -> dict[str, Problem]:
    lines = gzip.decompress(data_file("humaneval").read_bytes()).decode("utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return {r["task_id"]: Problem(r["task_id"], r["prompt"], r["entry_point"], "", "", "humaneval") for r in rows}


def statements(program: str) -> list[str]:
    try:
        return [ast.dump(s) for s in ast.parse(program).body]
    except SyntaxError:
        return ["<syntax error>"]


def entry(program: str, name: str) -> str | None:
    return next((s for s in statements(program) if f"FunctionDef(name='{name}'" in s), None)


def timed(function: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - start


def compare(rows: list[dict[str, Any]], tasks: dict[str, Problem], kind: str) -> dict[str, Any]:
    from evalplus.sanitize import sanitize

    same_entry = superset = from_prompt = 0
    ours_s, theirs_s, differing = [], [], []
    for row in rows:
        problem = tasks[row["task_id"]]
        answer = row["raw_output"] if kind == "fresh answer" else row["solution"] + CLOSING
        theirs, t_theirs = timed(sanitize, answer, problem.entry_point)
        ours, t_ours = timed(EVALPLUS.program, answer, problem)
        ours_s.append(t_ours)
        theirs_s.append(t_theirs)
        own = extract(EVALPLUS.prefill + answer, problem).program  # koderz's own reading, prompt restored
        same_entry += entry(ours, problem.entry_point) == entry(theirs, problem.entry_point)
        if set(statements(theirs)) <= set(statements(ours)):
            superset += 1
        else:
            differing.append(row["task_id"])
        from_prompt += set(statements(own)) != set(statements(ours))
    return {
        "answers": len(rows),
        "same_entry_function": same_entry,
        "keeps_all_evalplus_keeps": superset,
        "differing_tasks": differing,
        "own_reading_takes_from_prompt": from_prompt,
        "koderz_seconds": {"median": statistics.median(ours_s), "max": max(ours_s), "total": sum(ours_s)},
        "evalplus_seconds": {"median": statistics.median(theirs_s), "max": max(theirs_s), "total": sum(theirs_s)},
    }


def scaling() -> list[dict[str, Any]]:
    """Seconds to read one answer of ``lines`` lines of code followed by a sentence."""
    from evalplus.sanitize import sanitize

    problem = Problem("Synthetic/0", "def f():\n    pass\n", "f", "", "", "synthetic")
    out = []
    for lines in (50, 100, 200, 400):
        body = "\n".join(f"    x{i} = {i} + 1" for i in range(lines))
        answer = f"def f():\n{body}\n    return x0\n```\n\nThat is all."
        _, theirs = timed(sanitize, answer, "f")
        _, ours = timed(EVALPLUS.program, answer, problem)
        out.append({"lines": lines, "koderz_s": ours, "evalplus_s": theirs, "ratio": theirs / ours})
    return out


def main() -> None:
    with gzip.open(SAMPLES, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    tasks = problems()
    results = {kind: compare(rows, tasks, kind) for kind in ("fresh answer", "continuation")}
    growth = scaling()
    print(f"{'answers read as':<16} {'n':>5} {'same entry fn':>14} {'keeps EvalPlus':>15} {'own: +prompt':>13} "
          f"{'koderz s (med/max)':>20} {'EvalPlus s (med/max)':>22}")  # fmt: skip
    for kind, r in results.items():
        k, e = r["koderz_seconds"], r["evalplus_seconds"]
        print(f"{kind:<16} {r['answers']:>5} {r['same_entry_function']:>14} {r['keeps_all_evalplus_keeps']:>15} "
              f"{r['own_reading_takes_from_prompt']:>13} {k['median']:>9.4f}/{k['max']:<9.4f} "
              f"{e['median']:>10.4f}/{e['max']:<10.4f}")  # fmt: skip
    print(f"\n{'lines':>6} {'koderz s':>10} {'EvalPlus s':>11} {'ratio':>8}")
    for g in growth:
        print(f"{g['lines']:>6} {g['koderz_s']:>10.4f} {g['evalplus_s']:>11.4f} {g['ratio']:>7.1f}x")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(), "product": product_state(), "comparison": results, "growth": growth}
    RESULT.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {RESULT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
