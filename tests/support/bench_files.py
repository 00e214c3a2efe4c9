"""koderz's own BigCodeBench / LiveCodeBench files (shipped in the package) and their samples."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from koderz.config import DatasetConfig
from koderz.sandbox.sandbox import SandboxConfig

DATA = Path(__file__).resolve().parents[2] / "koderz" / "datasets" / "data"
BCB_FILE = DATA / "bigcodebench" / "bigcodebench-koderz-v0.1.jsonl"
BCB_HARD_FILE = DATA / "bigcodebench" / "bigcodebench-hard-koderz-v0.1.jsonl"
BCB_SAMPLES = DATA / "bigcodebench" / "samples.jsonl"
LCB_FILE = DATA / "livecodebench" / "code_generation_lite-koderz-v0.1.jsonl"
LCB_SAMPLES = DATA / "livecodebench" / "samples.jsonl"
PASSING_VARIANTS = {"canonical", "right", "whitespace"}


@dataclass(frozen=True)
class Sample:
    task_id: str
    solution: str
    variant: str  # canonical/right/whitespace must pass; every other kind must fail

    @property
    def should_pass(self) -> bool:
        return self.variant in PASSING_VARIANTS


def bcb_samples() -> list[Sample]:
    rows = [json.loads(line) for line in BCB_SAMPLES.read_text().splitlines()]
    return [Sample(r["task_id"], r["solution"], r["variant"]) for r in rows]


def lcb_samples() -> list[Sample]:
    out = []
    for line in LCB_SAMPLES.read_text().splitlines():
        row = json.loads(line)
        out += [
            Sample(row["question_id"], code, kind) for code, kind in zip(row["code_list"], row["variants"], strict=True)
        ]
    return out


def bcb_config(**keys: Any) -> DatasetConfig:
    return replace(DatasetConfig(name="bigcodebench", evaluator="bigcodebench", path=str(BCB_FILE)), **keys)


def lcb_config(**keys: Any) -> DatasetConfig:
    return replace(DatasetConfig(name="livecodebench", evaluator="livecodebench", path=str(LCB_FILE)), **keys)


def sandbox_config(**keys: Any) -> SandboxConfig:
    """A two-slot sandbox with a uid range of this test session's own."""
    return SandboxConfig(max_processes=2, uid_base=3_950_000 + (os.getpid() % 1000) * 64, **keys)
