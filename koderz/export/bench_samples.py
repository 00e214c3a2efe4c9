"""Programs in each benchmark's own samples format, for its own evaluator.

BigCodeBench: ``samples.jsonl``, one ``{"task_id", "solution"}`` per program (the whole program,
as ``bigcodebench.evaluate --samples`` reads a ``solution``). LiveCodeBench: one
``{"question_id", "code_list"}`` per problem, the programs in order (what its custom evaluator
reads). Problems keep their first-seen order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    task_id: str
    program: str


def bigcodebench_lines(samples: Iterable[Sample]) -> list[str]:
    return [json.dumps({"task_id": s.task_id, "solution": s.program}, ensure_ascii=False) for s in samples]


def livecodebench_lines(samples: Iterable[Sample]) -> list[str]:
    codes: dict[str, list[str]] = {}
    for sample in samples:
        codes.setdefault(sample.task_id, []).append(sample.program)
    return [json.dumps({"question_id": q, "code_list": c}, ensure_ascii=False) for q, c in codes.items()]


def write_lines(path: Path, lines: list[str]) -> None:
    """Write ``lines`` as JSONL through a temporary file, so a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    partial.replace(path)
