"""Digests of the code that decides a figure, read from the source files' bytes (not a version string)."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType


def _file(module: ModuleType | str) -> Path:
    """A module's source file; a name is located without importing it (no import cycles)."""
    if isinstance(module, ModuleType):
        return Path(str(module.__file__)).resolve()
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ImportError(f"no source file for module {module}")
    return Path(spec.origin).resolve()


def module_files(modules: Iterable[ModuleType | str], packages: Iterable[ModuleType] = ()) -> list[Path]:
    """The source files of ``modules`` and every ``.py`` file under ``packages``, sorted, once each."""
    files = {_file(m) for m in modules}
    for package in packages:
        files |= {p.resolve() for p in _file(package).parent.rglob("*.py")}
    return sorted(files)


def source_digest(files: Iterable[Path]) -> str:
    """SHA-256 over each file's name and bytes."""
    digest = hashlib.sha256()
    for path in files:
        data = path.read_bytes()
        digest.update(f"{path.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()
