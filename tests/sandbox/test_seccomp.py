"""``python -m koderz`` where no namespace can be made (``unshare``/``clone`` with CLONE_NEWUSER or
CLONE_NEWNS denied by a seccomp filter, as under common container runtimes' default profile):
``containment=auto`` stops before any attempt with one line and exit 2; ``limits_only``, asked for,
runs the program as an unprivileged uid (as root) with an empty environment, unable to read
koderz's ``/proc/<pid>/environ``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from koderz.errors import ExitCode
from koderz.sandbox.mechanism import Mechanism
from tests.support import seccomp_deny_unshare
from tests.support.escapes import environ_spy
from tests.support.readable_python import readable_python

REPO = Path(__file__).resolve().parents[2]
SECRET = "KZ-SECCOMP-SECRET"
SPY = environ_spy("has_close_elements", SECRET)
pytestmark = pytest.mark.skipif(
    os.uname().machine not in seccomp_deny_unshare.ARCHES, reason="the filter knows x86_64 and aarch64"
)


def _koderz(python: str, cwd: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "HOME": os.environ.get("HOME", str(cwd)), "KZ_SECRET": SECRET}
    env["PYTHONPATH"] = str(REPO)
    for name in ("KODERZ_CACHE_DIR", "XDG_CACHE_HOME"):
        if name in os.environ:
            env[name] = os.environ[name]
    launcher = [sys.executable, seccomp_deny_unshare.__file__]
    command = [*launcher, python, "-m", "koderz", "end=1", "tracking=off", "cortex=off", *overrides]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_auto_stops_before_any_attempt_with_one_line(tmp_path) -> None:
    done = _koderz(sys.executable, tmp_path)
    assert done.returncode == ExitCode.BAD_INPUT, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, done.stderr[-2000:]
    assert errors[0].startswith("koderz: error: no isolating sandbox works here (")
    assert f"{Mechanism.USER_NAMESPACES}: containment failed" in errors[0]
    assert errors[0].endswith("or run without isolation explicitly with sandbox.containment=limits_only")
    assert not list((tmp_path / "outputs").glob("runs/*/*"))  # no run folder left


def test_limits_only_runs_unprivileged_with_an_empty_environment(tmp_path) -> None:
    python = sys.executable if os.geteuid() != 0 else readable_python(tmp_path)
    if python is None:
        pytest.skip("no system Python of this version whose standard library every uid can read")
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/0", "solution": SPY}) + "\n")
    done = _koderz(
        python, tmp_path, "model=replay", f"model.samples={samples}", f"sandbox.containment={Mechanism.LIMITS_ONLY}"
    )
    assert done.returncode == ExitCode.OK, done.stderr[-2000:]
    (attempts,) = tmp_path.glob("outputs/runs/*/*/attempts.jsonl")
    attempt = json.loads(attempts.read_text().splitlines()[0])
    got = attempt["got"].strip("'")
    if os.geteuid() == 0:
        assert int(got.split()[0].removeprefix("uid=")) != 0, got
    assert "env=[]" in got and got.endswith("seen=0"), got
    folder = attempts.parent
    assert attempt["mechanism"] == Mechanism.LIMITS_ONLY
    record = json.loads((folder / "results.jsonl").read_text().splitlines()[0])
    assert record["mechanism"] == record["isolation"]["mechanism"] == Mechanism.LIMITS_ONLY
    assert json.loads((folder / "samples.jsonl").read_text().splitlines()[0])["mechanism"] == Mechanism.LIMITS_ONLY
    summary = json.loads((folder / "results.json").read_text())["summary"]
    assert summary["mechanism"] == summary["isolation"]["mechanism"] == Mechanism.LIMITS_ONLY
