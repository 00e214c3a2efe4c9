"""A run's programs in each benchmark's own samples format, for its own evaluator.

BigCodeBench: ``samples.jsonl``, one ``{"task_id", "solution"}`` per program (the whole program,
as ``bigcodebench.evaluate --samples`` reads a ``solution``). LiveCodeBench: a JSON list of
``{"question_id", "code_list"}``, one per problem with its programs in order (what its
``custom_evaluator --custom_output_file`` reads). Problems keep their first-seen order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from koderz.datasets import bigcodebench, livecodebench
from koderz.errors import ConfigError
from koderz.records import RunFolder
from koderz.vocab import Mode


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


FILE_NAMES = {bigcodebench.DATASET: "bigcodebench_samples.jsonl", livecodebench.DATASET: "livecodebench_outputs.json"}


def run_samples(folder: RunFolder, mode: Mode, benchmark: str) -> tuple[str, str]:
    """The default file name and the text of ``folder``'s final samples of ``mode`` in
    ``benchmark``'s format; ``ConfigError`` when the run is not on that benchmark or has no samples."""
    dataset = (folder.read_config().get("dataset") or {}).get("name")
    if dataset != benchmark:
        raise ConfigError(f"{folder.path}: a run on dataset={dataset}, not {benchmark}")
    samples = [Sample(s.task_id, s.solution) for s in folder.samples(mode)]
    if not samples:
        raise ConfigError(f"{folder.path}: no {mode.value} samples to export ({folder.samples_name(mode)} is empty)")
    if benchmark == bigcodebench.DATASET:
        return FILE_NAMES[benchmark], "".join(line + "\n" for line in bigcodebench_lines(samples))
    return FILE_NAMES[benchmark], "[" + ",\n".join(livecodebench_lines(samples)) + "]\n"
