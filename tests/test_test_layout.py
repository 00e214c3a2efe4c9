"""The layout of ``tests/``, read statically with ``ast``: shared helpers live in ``tests/support/``
and no test imports another test module.

Every ``import`` and ``from ... import`` counts, wherever it stands (a function-local import too).
A module under ``tests/`` may import ``tests.support.*`` and a ``conftest``; nothing else under
``tests/``. A module that is neither a test (``test_*.py``) nor a ``conftest.py`` is a helper and
lives in ``tests/support/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

# helpers still outside tests/support/ while other branches edit them (issue 24): move each to
# tests/support/ and drop its entry here
PENDING_MOVES: dict[str, str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_test_modules(source: str, name: str) -> set[str]:
    """The ``tests.*`` modules a module of that ``name`` imports (``from tests.x import y`` counts
    as ``tests.x.y`` when ``y`` is a module, so both spellings are caught)."""
    found: set[str] = set()
    package = name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importer's package
                anchor = package.split(".")
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if is_module(f"{base}.{alias.name}"))
    return {m for m in found if m == "tests" or m.startswith("tests.")}


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def allowed(target: str) -> bool:
    """A helper a test may import: ``tests.support``, a conftest, a pending move, or a package's
    ``__init__`` on the way to one of those."""
    if target in ("tests", "tests.support") or target.startswith("tests.support."):
        return True
    if target.rsplit(".", 1)[-1] == "conftest":
        return True
    return any(target == p or target.startswith(p + ".") for p in PENDING_MOVES)


def test_no_test_imports_another_test_module() -> None:
    wrong = []
    for path in sorted(TESTS.rglob("*.py")):
        name = module_name(path)
        for target in sorted(imported_test_modules(path.read_text(), name)):
            if not allowed(target):
                wrong.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not wrong, "move shared helpers to tests/support/:\n" + "\n".join(wrong)


def test_helper_modules_live_in_tests_support() -> None:
    wrong = []
    for path in sorted(TESTS.rglob("*.py")):
        if path.name.startswith("test_") or path.name in ("conftest.py", "__init__.py"):
            continue
        if not allowed(module_name(path)):
            wrong.append(str(path.relative_to(ROOT)))
    assert not wrong, "helper modules outside tests/support/:\n" + "\n".join(wrong)


def test_every_pending_move_is_still_pending() -> None:
    """An entry is dropped once its module has moved, so the allowance cannot outlive the need."""
    assert [name for name in PENDING_MOVES if not is_module(name)] == []


def test_the_import_walk_sees_every_spelling() -> None:
    """The check can fail: each way of importing a test module is found and refused."""
    source = (
        "import tests.test_cli\n"
        "from tests.test_cli import koderz\n"
        "from tests import test_cli\n"
        "from . import test_cli as again\n"
        "def later():\n"
        "    from tests.cortex.test_local_store import x\n"
    )
    found = imported_test_modules(source, "tests.test_probe")
    assert {"tests.test_cli", "tests.cortex.test_local_store"} <= found
    assert not allowed("tests.test_cli") and not allowed("tests.cortex.test_local_store")
    assert allowed("tests.support.env") and allowed("tests.conftest") and allowed("tests.cluster.conftest")
