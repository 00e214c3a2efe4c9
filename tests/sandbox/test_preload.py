"""The fork server preloads a library environment's modules: every attempt finds them loaded
(without importing them), none sees what an earlier attempt did to its copy, none inherits the
zygote's files, and a module that does not import is reported and left to each attempt."""

from __future__ import annotations

import shutil
import site
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from koderz.errors import SandboxError
from koderz.sandbox.forkserver import Preload, writable_by_others
from koderz.sandbox.sandbox import Sandbox, SandboxConfig

MARKER = """
import os
STATE = []
HANDLE = open(__file__, "rb")  # a file the zygote holds open: no attempt may inherit it
INODE = os.fstat(HANDLE.fileno()).st_ino
"""

# module-level code runs once per attempt: the verdict passes only if the module was preloaded
# (its file is gone by then), untouched by the attempt before, and its file handle not inherited
CHECK_AND_POISON = """
import os, sys
_marker = sys.modules.get("kzmarker")
_clean = _marker is not None and _marker.STATE == [] and not hasattr(_marker, "POISON")
try:
    _leaked = _clean and os.fstat(_marker.HANDLE.fileno()).st_ino == _marker.INODE
except OSError:
    _leaked = False
if _marker is not None:
    _marker.STATE.append("poisoned")
    _marker.POISON = True
import kzmarker  # the module's file was deleted: this works only from sys.modules

def strlen(string):
    return len(string) if _clean and not _leaked else -1
"""


@pytest.fixture
def library() -> Iterator[Path]:
    """A library directory (readable by the attempts' uids) with a marker and a broken module."""
    folder = Path(tempfile.mkdtemp(prefix="koderz-preload-test-"))
    folder.chmod(0o755)
    (folder / "kzmarker.py").write_text(MARKER)
    (folder / "kz_broken.py").write_text("raise RuntimeError('broken on purpose')\n")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


async def test_preloaded_module_is_in_each_attempt_clean_and_without_the_zygotes_files(
    humaneval, uid_base, library
) -> None:
    config = SandboxConfig(
        uid_base=uid_base, library_paths=(str(library),), preload=("kzmarker", "kz_broken", "kz_missing")
    )
    sandbox = Sandbox(config)
    problem = humaneval["HumanEval/23"]  # strlen(string) -> int
    try:
        report = await sandbox.preload_report()
        assert report.loaded == ("kzmarker",)
        assert set(report.failed) == {"kz_broken", "kz_missing"}
        assert "broken on purpose" in report.failed["kz_broken"]
        assert report.failed["kz_missing"].startswith("ModuleNotFoundError")
        (library / "kzmarker.py").unlink()  # from here on, only a preloaded copy can be found
        for _ in range(3):  # each attempt poisons its copy; the next one must not see it
            verdict = await sandbox.evaluate(problem, CHECK_AND_POISON)
            assert verdict.passed, verdict.feedback()
        # the broken module is not fatal: an attempt that imports it gets its error itself
        broken = "import sys\nsys.path.insert(0, {!r})\nimport kz_broken\ndef strlen(s): return len(s)\n"
        verdict = await sandbox.evaluate(problem, broken.format(str(library)))
        assert verdict.status == "error" and "broken on purpose" in (verdict.error or "")
    finally:
        sandbox.close()


async def test_without_preload_an_attempt_has_no_library_module_loaded(humaneval, uid_base, library) -> None:
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base, library_paths=(str(library),)))
    try:
        assert (await sandbox.preload_report()).loaded == ()
        verdict = await sandbox.evaluate(humaneval["HumanEval/23"], CHECK_AND_POISON)
        assert not verdict.passed  # kzmarker was not in sys.modules (the check above can fail)
    finally:
        sandbox.close()


async def test_real_libraries_preload_and_a_backend_switch_does_not_reach_the_next_attempt(humaneval, uid_base) -> None:
    """pandas and pyplot from this environment: loaded in every attempt before it imports anything;
    one attempt switching matplotlib's backend leaves the next on Agg."""
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    config = SandboxConfig(
        uid_base=uid_base, library_paths=tuple(site.getsitepackages()), preload=("pandas", "matplotlib.pyplot")
    )
    sandbox = Sandbox(config)
    problem = humaneval["HumanEval/23"]
    present = (
        "import sys\n_loaded = {'pandas', 'matplotlib.pyplot'} <= set(sys.modules)\n"
        "import matplotlib\n_agg = matplotlib.get_backend().lower() == 'agg'\n"
        "def strlen(s): return len(s) if _loaded and _agg else -1\n"
    )
    switch = (
        "import matplotlib.pyplot as plt\nplt.switch_backend('pdf')\nimport matplotlib\n"
        "def strlen(s): return len(s) if matplotlib.get_backend() == 'pdf' else -1\n"
    )
    try:
        report = await sandbox.preload_report()
        assert report.loaded == ("pandas", "matplotlib.pyplot") and report.threads == 1, report
        verdicts = [await sandbox.evaluate(problem, program) for program in (present, switch, present)]
        assert [v.passed for v in verdicts] == [True, True, True], [v.feedback() for v in verdicts]
    finally:
        sandbox.close()


def test_a_preload_name_that_is_not_a_module_is_refused() -> None:
    with pytest.raises(SandboxError, match="not a module name"):
        Preload(modules=("os; import evil",))


def _private_dirs(folder: Path) -> list[Path]:
    return [p for p in folder.glob("koderz-forkserver-*") if p.is_dir()]


async def test_the_zygotes_private_config_directory_is_removed_on_close(uid_base, library, tmp_path, monkeypatch):
    """A preloading zygote reads its libraries' config and caches from a 0700 directory of its own
    (never the shared /tmp's), removed when the sandbox closes."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base, library_paths=(str(library),), preload=("kzmarker",)))
    try:
        await sandbox.preload_report()
        created = _private_dirs(tmp_path)
        assert len(created) == 1 and created[0].stat().st_mode & 0o777 == 0o700
    finally:
        sandbox.close()
    assert _private_dirs(tmp_path) == []


async def test_a_library_path_other_users_can_write_is_not_preloaded(humaneval, uid_base, library) -> None:
    """The zygote is trusted: it imports nothing from a directory another user could change;
    attempts still run (and would import the module themselves, contained)."""
    library.chmod(0o777)
    sandbox = Sandbox(SandboxConfig(uid_base=uid_base, library_paths=(str(library),), preload=("kzmarker",)))
    problem = humaneval["HumanEval/23"]
    try:
        report = await sandbox.preload_report()
        assert report.loaded == ()
        assert "writable by other users" in report.failed["kzmarker"], report
        verdict = await sandbox.evaluate(problem, problem.reference_program)
        assert verdict.passed, verdict.feedback()
    finally:
        sandbox.close()


def test_writable_by_others_accepts_a_private_directory_under_a_sticky_tmp(library) -> None:
    assert writable_by_others(str(library)) is None  # 0755, ours, under /tmp (1777, sticky)
    library.chmod(0o775)
    assert "writable by other users" in (writable_by_others(str(library)) or "")
