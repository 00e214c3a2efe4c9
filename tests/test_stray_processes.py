"""The stray-process check of tests/support/processes.py finds what it must, so it can fail."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psutil

from tests.support.processes import TAG_ENV, related_processes

# starts a sleeper in a new session and exits: the sleeper is reparented, as a worker that
# outlived its run would be
ORPHAN = (
    "import subprocess, sys; "
    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
    "print(p.pid)"
)


def test_a_reparented_process_with_the_tests_tag_is_found(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    before = related_processes(tag, tmp_path)
    env = dict(os.environ, **{TAG_ENV: tag})
    done = subprocess.run([sys.executable, "-c", ORPHAN], env=env, capture_output=True, text=True, timeout=60)
    orphan = psutil.Process(int(done.stdout))
    try:
        assert orphan.ppid() != os.getpid()  # not our child any more
        found = {seen.pid for key, seen in related_processes(tag, tmp_path).items() if key not in before}
        assert orphan.pid in found
        assert orphan.pid not in {s.pid for s in related_processes(uuid.uuid4().hex, tmp_path).values()}
    finally:
        orphan.kill()
        orphan.wait(timeout=30)


def test_a_child_is_found_and_once_ended_is_not(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        assert child.pid in {s.pid for s in related_processes(tag, tmp_path).values()}
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.pid not in {s.pid for s in related_processes(tag, tmp_path).values()}
