"""koderz run by a real normal user (slow; needs root to create the user).

As that user (a venv over a Python any user can run, ``pip install -e`` of this
checkout): the canonical HumanEval solutions pass 164/164 and the exploits that only
containment stops (reading the canonical solution from the installed dataset, reading
the package, writing outside the sandbox, a loopback connection, a daemon, environment
secrets) get 0 passes, leave no trace and no process of that user behind; isolation is
``user_namespaces``; ``timeout`` and ``memory`` are what koderz measured, not the program's exit
code or exception. With user namespaces denied to koderz (a seccomp filter on
``unshare(CLONE_NEWUSER)``) it falls back to bubblewrap and contains them again; with bwrap
absent too it refuses to run (naming ``sandbox.containment=limits_only``), and, asked for
``limits_only``, runs with an empty environment, unable to read koderz's environ.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from tests.support.unprivileged import UnprivilegedKoderz, missing

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(missing() is not None, reason=str(missing())),
]
ESCAPE_ANSWERS = {
    "read_package": "'FileNotFoundError'",
    "daemon": "'daemon started'",
    "env_secrets": "'no key|HOME,LANG,PATH,PYTHONHASHSEED,TMPDIR'",
}


@pytest.fixture(scope="module")
def user():
    with UnprivilegedKoderz() as created:
        yield created


def _contained(user: UnprivilegedKoderz, listener, deny_userns: bool) -> dict:
    port, accepted = listener
    marker = "koderz-user-" + uuid.uuid4().hex[:8]
    secret = "sk-fake-" + marker
    report = user.escapes(
        {"marker": marker, "port": port, "stops": True, "secret": secret},
        user.environment(OPENAI_API_KEY=secret),
        deny_userns=deny_userns,
    )
    assert report["uid"] == user.uid
    assert report["canonical_passed"] == 164
    assert report["cheat_passed"] == []
    escapes = report["escapes"]
    assert not any(v["passed"] for v in escapes.values())
    assert {name: escapes[name]["got"] for name in ESCAPE_ANSWERS} == ESCAPE_ANSWERS
    assert escapes["loopback_network"]["got"] in ("'OSError'", "'ConnectionRefusedError'")
    assert accepted == []
    assert secret not in repr(report)
    traces = [
        Path("/tmp") / marker,
        Path("/tmp") / f"{marker}-daemon",
        user.home / marker,
        Path(report["package_dir"]) / "sandbox" / marker,
        Path("/var/tmp") / marker,
    ]
    assert [p for p in traces if p.exists()] == []
    assert user.wait_for_no_processes() == []  # the daemon died with its attempt
    stops = report["stops"]
    assert (stops["exit_124"]["status"], stops["exit_124"]["error"]) == (
        "error",
        "the program exited (code 124) before it answered every test",
    )
    assert (stops["memory_error"]["status"], stops["memory_error"]["error"]) == ("error", "MemoryError: pretending")
    assert stops["fork_spinners"]["status"] == "timeout"  # the CPU budget with a cgroup, else the wall backstop
    assert "FileNotFoundError" in (stops["spy"]["error"] or "")  # no /proc inside the private root
    return report


def test_a_normal_user_gets_user_namespaces(user, listener) -> None:
    report = _contained(user, listener, deny_userns=False)
    isolation = report["isolation"]
    assert isolation["mechanism"] == "user_namespaces"
    assert (isolation["network"], isolation["pid"], isolation["filesystem"]) == (
        "namespace",
        "namespace",
        "private root",
    )
    assert isolation["user"] == f"uid {user.uid} in a user namespace, no capabilities"
    assert isolation["memory"].startswith(("cgroup v", "rlimit per process"))
    assert isolation["cpu"].startswith(("cgroup v", "rlimit per process"))
    assert report["summary"] == "sandbox containment: user_namespaces"


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed (apt install bubblewrap)")
def test_without_user_namespaces_bubblewrap_contains_again(user, listener) -> None:
    report = _contained(user, listener, deny_userns=True)
    assert report["isolation"]["mechanism"] == "bubblewrap"
    assert report["isolation"]["filesystem"] == "private root"


def test_without_user_namespaces_or_bwrap_nothing_runs_unless_limits_only_is_asked_for(user) -> None:
    secret = "sk-fake-limits-" + uuid.uuid4().hex[:8]
    env = user.environment(OPENAI_API_KEY=secret)
    env["PATH"] = str(user.home / "no-tools")  # no bwrap to find
    refused = user.escapes({"exploits": False}, env, deny_userns=True)
    assert refused["refused"].startswith("no isolating sandbox works here (user_namespaces: containment failed")
    assert "; bubblewrap: bwrap is not on PATH)" in refused["refused"]
    assert refused["refused"].endswith("run without isolation explicitly with sandbox.containment=limits_only")
    # no fork spinners: without a PID namespace or a cgroup, processes in new sessions outlive the
    # attempt until their own CPU rlimit (docs/sandbox.md, limits_only)
    stops = ["exit_124", "memory_error", "spy"]
    settings = {"exploits": False, "containment": "limits_only", "stops": stops, "secret": secret}
    report = user.escapes(settings, env, deny_userns=True)
    isolation = report["isolation"]
    assert report["canonical_passed"] == 164
    assert isolation["mechanism"] == "limits_only"
    assert (isolation["network"], isolation["filesystem"]) == ("shared", "shared")
    assert report["summary"].startswith("sandbox containment: limits_only (asked for")
    spy = report["stops"]["spy"]["got"]
    assert spy.startswith(f"'uid={user.uid} groups=") and spy.endswith(" env=[] seen=0'"), spy  # koderz: not dumpable
    assert report["stops"]["exit_124"]["status"] == report["stops"]["memory_error"]["status"] == "error"
    assert os.geteuid() == 0 and user.wait_for_no_processes() == []
