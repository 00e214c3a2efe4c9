"""Ground truth is never read from a place another user can change, and never as code (issue 25, item 2).

Files owned by "another user" are made with ``os.chown`` to uid 65534 (the tests run as root here;
those that need it are skipped otherwise).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from koderz.datasets import groundtruth
from koderz.errors import ConfigError, DatasetError
from koderz.safefiles import UnsafeFile

OTHER_UID = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make files of another user")
DATA = b"synthetic data file"
TASKS = [
    {
        "task_id": "T/0",
        "entry_point": "double",
        "program": "def double(x):\n    return x * 2\n",
        "tests": "",
        "inputs": [[1], [2]],
        "record_check": False,
        "family": "humaneval",
    },
    {
        "task_id": "T/1",
        "entry_point": "wide",
        "program": "def wide(n):\n    return 'x' * n\n",
        "tests": "",
        "inputs": [[3], [5000]],  # a 5000-character answer: kept in the side file
        "record_check": False,
        "family": "humaneval",
    },
]


class Planted:
    """What another user plants: unpickling it makes the folder ``marker`` (code ran)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def _plant(folder: Path, marker: Path) -> None:
    """A pickle under the name the old cache read, and a forged JSON file under the new one."""
    store = folder / "groundtruth"
    store.mkdir(parents=True, exist_ok=True)
    old = store / f"synthetic-{groundtruth.file_hash(DATA)}-v6-py{sys.version_info[0]}{sys.version_info[1]}.pkl"
    old.write_bytes(pickle.dumps(Planted(marker)))
    forged = {"T/0": {"inputs": None, "kept": None, "expected": ["3", "5"], "floats": [], "side": False, "seconds": 0}}
    body = json.dumps(forged).encode()
    (store / "synthetic-forged.json").write_bytes(b"{}\n" + body)
    for path in (folder, store, *store.iterdir()):
        os.chown(path, OTHER_UID, OTHER_UID)
        os.chmod(path, 0o777)


@as_root
def test_a_cache_folder_another_user_owns_is_refused_and_nothing_in_it_is_loaded(tmp_path, monkeypatch) -> None:
    shared, marker = tmp_path / "shared-cache", tmp_path / "code-ran"
    _plant(shared, marker)
    monkeypatch.setenv("KODERZ_CACHE_DIR", str(shared))
    with pytest.raises(UnsafeFile, match=r"the cache folder \(from KODERZ_CACHE_DIR\) .*shared-cache.* uid 65534"):
        groundtruth.load_or_compute("synthetic", DATA, TASKS)
    assert not marker.exists()


def test_a_world_writable_folder_on_the_way_is_refused(tmp_path, monkeypatch) -> None:
    shared = tmp_path / "open"
    (shared / "cache").mkdir(parents=True)
    os.chmod(shared, 0o777)  # no sticky bit: anyone may rename ``cache`` away and put their own
    monkeypatch.setenv("KODERZ_CACHE_DIR", str(shared / "cache"))
    with pytest.raises(ConfigError, match=r"open is writable by group or others \(mode 777\)"):
        groundtruth.load_or_compute("synthetic", DATA, TASKS)
    os.chmod(shared / "cache", 0o777)
    os.chmod(shared, 0o755)
    with pytest.raises(ConfigError, match=r"cache: it is writable by group or others"):
        groundtruth.load_or_compute("synthetic", DATA, TASKS)


@as_root
def test_a_link_another_user_owns_is_not_followed_even_in_a_sticky_folder(tmp_path, monkeypatch) -> None:
    sticky = tmp_path / "sticky"
    sticky.mkdir(mode=0o1777)
    os.chmod(sticky, 0o1777)
    own = tmp_path / "own"
    own.mkdir(mode=0o700)
    link = sticky / "cache"
    link.symlink_to(own)
    monkeypatch.setenv("KODERZ_CACHE_DIR", str(link))
    assert groundtruth.load_or_compute("synthetic", DATA, TASKS[:1]).tasks["T/0"].expected == ["2", "4"]
    os.lchown(link, OTHER_UID, OTHER_UID)  # now another user's link (they could point it anywhere)
    with pytest.raises(ConfigError, match=r"sticky/cache: it is a symbolic link owned by uid 65534"):
        groundtruth.load_or_compute("synthetic", DATA, TASKS[:1])


def _stored(folder: Path) -> Path:
    (path,) = (folder / "groundtruth").glob(f"synthetic-{groundtruth.truth_key('synthetic', DATA)}.json")
    return path


def test_the_cache_is_json_data_whose_key_and_digest_are_checked(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("KODERZ_CACHE_DIR", str(tmp_path))
    first = groundtruth.load_or_compute("synthetic", DATA, TASKS)
    path = _stored(tmp_path)
    assert oct(path.stat().st_mode & 0o777) == "0o600" and oct((tmp_path / "groundtruth").stat().st_mode)[-3:] == "700"
    header, body = path.read_bytes().split(b"\n", 1)
    assert json.loads(header)["key"] == groundtruth.truth_key("synthetic", DATA)
    assert json.loads(body)["T/0"]["expected"] == ["2", "4"]
    # a wrong answer written in (so that a wrong program would pass), digest left as it was: recomputed
    path.write_bytes(header + b"\n" + body.replace(b'["2","4"]', b'["3","5"]'))
    with caplog.at_level(logging.WARNING):
        again = groundtruth.load_or_compute("synthetic", DATA, TASKS)
    assert "does not match" in caplog.text and list(again.expected("T/0")) == [2, 4]
    assert again.tasks["T/1"].expected == first.tasks["T/1"].expected
    # the same with a digest that fits the forged body: a file under another key is not this one's
    forged = body.replace(b'["2","4"]', b'["3","5"]')
    other = json.loads(header) | {"key": "0" * 32}
    other["sha256"] = hashlib.sha256(forged).hexdigest()
    path.write_bytes(json.dumps(other).encode() + b"\n" + forged)
    assert list(groundtruth.load_or_compute("synthetic", DATA, TASKS).expected("T/0")) == [2, 4]


def test_a_symlinked_cache_file_is_not_followed_but_replaced(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("KODERZ_CACHE_DIR", str(tmp_path / "cache"))
    groundtruth.load_or_compute("synthetic", DATA, TASKS)
    path = _stored(tmp_path / "cache")
    elsewhere = tmp_path / "elsewhere.json"
    saved = path.read_bytes()
    elsewhere.write_bytes(saved)
    path.unlink()
    path.symlink_to(elsewhere)
    with caplog.at_level(logging.WARNING):
        truth = groundtruth.load_or_compute("synthetic", DATA, TASKS)
    assert "cannot be opened safely" in caplog.text
    assert not path.is_symlink() and path.is_file() and elsewhere.read_bytes() == saved  # written in place of the link
    assert list(truth.expected("T/0")) == [2, 4]


def test_a_big_answer_is_read_from_its_side_file_only_when_it_matches_its_digest(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KODERZ_CACHE_DIR", str(tmp_path))
    truth = groundtruth.load_or_compute("synthetic", DATA, TASKS)
    expected = truth.expected("T/1")
    assert expected.text(1) is None and expected[1] == "x" * 5000  # only a digest inline
    (side,) = (tmp_path / "groundtruth").glob("synthetic-*.d/T_1.wire")
    side.write_bytes(side.read_bytes().replace(b"xxx", b"xyx", 1))
    with pytest.raises(DatasetError, match="does not match its digest"):
        expected[1]
    side.unlink()
    side.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafeFile, match="cannot be opened safely"):
        expected[1]


def test_the_command_refuses_an_unsafe_cache_folder_in_one_line_and_leaves_nothing(tmp_path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    run_dir = tmp_path / "run"
    env = {**os.environ, "KODERZ_CACHE_DIR": str(shared)}
    done = subprocess.run(
        [sys.executable, "-m", "koderz", "end=1", "tracking=off", "cortex=off", f"hydra.run.dir={run_dir}"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and f"the cache folder (from KODERZ_CACHE_DIR) {shared}" in errors[0], done.stderr
    assert "writable by group or others" in errors[0]
    assert not run_dir.exists() and list(shared.iterdir()) == []


@as_root
def test_a_group_writable_folder_is_refused_unless_the_group_is_the_users_own(tmp_path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    os.chmod(cache, 0o770)
    monkeypatch.setenv("KODERZ_CACHE_DIR", str(cache))
    os.chown(cache, 0, OTHER_UID)  # a group other users are in
    with pytest.raises(ConfigError, match=r"it is writable by group or others \(mode 770\)"):
        groundtruth.load_or_compute("synthetic", DATA, TASKS[:1])
    os.chown(cache, 0, os.getegid())  # root's own group, no other members (umask 002 systems)
    assert groundtruth.load_or_compute("synthetic", DATA, TASKS[:1]).tasks["T/0"].expected == ["2", "4"]


@as_root
def test_a_koderz_folder_another_user_made_first_in_a_shared_xdg_cache_is_refused(tmp_path, monkeypatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp: anyone may create, nobody may replace another's entry
    monkeypatch.delenv("KODERZ_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared))
    assert groundtruth.load_or_compute("synthetic", DATA, TASKS[:1]).tasks["T/0"].expected == ["2", "4"]
    assert oct((shared / "koderz").stat().st_mode & 0o777) == "0o700"  # made by koderz: the user's, 0700
    shutil.rmtree(shared / "koderz")
    (shared / "koderz").mkdir(mode=0o755)
    os.chown(shared / "koderz", OTHER_UID, OTHER_UID)  # another user was first
    with pytest.raises(ConfigError, match=r"\(from XDG_CACHE_HOME\) .*koderz: it is owned by uid 65534"):
        groundtruth.load_or_compute("synthetic", DATA, TASKS[:1])


def test_each_inputs_reference_time_and_the_machines_calibration_are_stored(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("KODERZ_CACHE_DIR", str(tmp_path))
    first = groundtruth.load_or_compute("synthetic", DATA, TASKS)
    assert first.calibration > 0
    for truth in first.tasks.values():
        assert len(truth.input_seconds) == len(truth.expected) and all(t >= 0 for t in truth.input_seconds)
    again = groundtruth.load_or_compute("synthetic", DATA, TASKS)
    assert again.calibration == first.calibration and again.tasks == first.tasks  # read back, not remeasured
    # a header without a positive calibration is not this format's: recomputed
    path = _stored(tmp_path)
    header, body = path.read_bytes().split(b"\n", 1)
    path.write_bytes(json.dumps(json.loads(header) | {"calibration": -1.0}).encode() + b"\n" + body)
    with caplog.at_level(logging.WARNING):
        groundtruth.load_or_compute("synthetic", DATA, TASKS)
    assert "calibration" in caplog.text
