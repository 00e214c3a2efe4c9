"""Rows of a benchmark in its published format, from a local file or by name from the hub.

``dataset.path`` is a JSONL file, a ``.jsonl.gz``, a ``.parquet`` or a folder written by
``datasets.Dataset.save_to_disk``; anything else that is not an existing path is a hub name,
read with ``datasets.load_dataset(name, split=...)``. The folder and the hub both go through
``datasets`` and give the same rows. A missing or unreadable source is one ``DatasetError``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from koderz.errors import DatasetError

FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet", ".json")


def looks_like_path(source: str) -> bool:
    """A source meant as a local file or folder (a hub name is ``owner/name`` with no suffix)."""
    return (
        source.startswith(("/", ".", "~"))
        or source.endswith(FILE_SUFFIXES)
        or Path(source).exists()
        or source.count("/") != 1
    )


def read_rows(source: str, split: str) -> list[dict[str, Any]]:
    """Every row of ``source`` as a plain dict, in file order; ``split`` names the hub split
    (and the split of a saved ``DatasetDict``)."""
    if not looks_like_path(source):
        return _from_hub(source, split)
    path = Path(source).expanduser()
    if not path.exists():
        raise DatasetError(f"dataset.path={source}: no such file or folder")
    try:
        if path.is_dir():
            return _from_saved(path, split, source)
        if path.name.endswith(".parquet"):
            import pyarrow.parquet as pq

            return list(pq.read_table(path).to_pylist())
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.name.endswith(".gz") else raw).decode("utf-8")
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"dataset.path={source}: cannot read it ({type(exc).__name__}: {_first_line(exc)})") from exc
    if not all(isinstance(r, dict) for r in rows):
        raise DatasetError(f"dataset.path={source}: every line must be a JSON object")
    return rows


def _from_saved(path: Path, split: str, source: str) -> list[dict[str, Any]]:
    import datasets

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if split in loaded:
            loaded = loaded[split]
        elif len(loaded) == 1:
            loaded = next(iter(loaded.values()))
        else:
            raise DatasetError(f"dataset.path={source}: no split {split} (has {', '.join(loaded)})")
    return [dict(r) for r in loaded]


def _from_hub(name: str, split: str) -> list[dict[str, Any]]:
    try:
        import datasets

        return [dict(r) for r in datasets.load_dataset(name, split=split)]
    except Exception as exc:
        raise DatasetError(f"dataset.path={name}: cannot load it from the hub ({_first_line(exc)})") from exc


def require(rows: list[dict[str, Any]], fields: tuple[str, ...], source: str) -> None:
    """Every row has ``fields`` (else the file is not in the benchmark's format)."""
    for index, row in enumerate(rows):
        missing = [f for f in fields if f not in row]
        if missing:
            raise DatasetError(f"dataset.path={source}: row {index} lacks {', '.join(missing)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
