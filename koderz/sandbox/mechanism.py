"""Which containment this machine gives an attempt, found by trying each once, strongest first.

``root namespaces`` (koderz runs as root), ``user namespaces`` (anyone, where the kernel
allows unprivileged user namespaces), ``bubblewrap`` (``bwrap`` on PATH works: e.g.
Ubuntu's AppArmor lets bwrap, not python, create user namespaces) and ``limits only``
(rlimits, own session, scrubbed environment). A probe is one contained child run with
no program: the mechanism holds when it reports a private root. Anything short of the
full containment carries a one-line hint on how to get it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from koderz.errors import SandboxError

log = logging.getLogger(__name__)

MECHANISMS = ("root namespaces", "user namespaces", "bubblewrap", "limits only")
PROBE_SECONDS = 30.0
HINT = (
    "for full containment allow unprivileged user namespaces (sysctl user.max_user_namespaces, or"
    " kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu), install bubblewrap, or run as root in a container"
)
DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")


@dataclass(frozen=True)
class Containment:
    """The mechanism chosen, why stronger ones did not hold, and how to get the full one."""

    mechanism: str
    note: str = ""

    @property
    def full(self) -> bool:
        return self.mechanism != "limits only"

    def report(self) -> dict[str, str]:
        """What ``verdict.isolation`` adds: why not stronger, and how to get the full one."""
        return {} if self.full else {"note": self.note, "hint": HINT}

    def summary(self) -> str:
        """One line for the log and the run summary."""
        if self.full:
            return f"sandbox containment: {self.mechanism}"
        return f"sandbox containment: {self.mechanism} ({self.note}); {HINT}"


def candidates(root: bool, isolate: bool, forced: str = "auto") -> list[str]:
    """Mechanisms to try, strongest first; ``forced`` (a name in MECHANISMS) allows only that one."""
    if forced != "auto":
        if forced not in MECHANISMS:
            raise SandboxError(f"sandbox containment {forced!r} is not one of auto, {', '.join(MECHANISMS)}")
        return [forced]
    if not isolate:
        return ["limits only"]
    return [*(["root namespaces"] if root else []), "user namespaces", "bubblewrap", "limits only"]


def bwrap_command(root_paths: list[str], hide: list[str], tmp_mb: int, cgroups: list[str]) -> list[str]:
    """bwrap arguments building the same private root as the namespace mechanisms (plus the
    attempt's cgroup directories, writable, so that the child can join them)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError("bwrap is not on PATH")
    args = [bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--as-pid-1", "--cap-drop", "ALL"]
    for path in root_paths:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    for device in DEVICES:
        args += ["--dev-bind", device, device]
    args += ["--size", str(tmp_mb * 2**20), "--perms", "1777", "--tmpfs", "/tmp"]
    for path in cgroups:
        args += ["--bind", path, path]
    bound = [p for p in root_paths if os.path.isdir(p) and not os.path.islink(p)]
    for path in hide:
        if not any(path == b or path.startswith(b.rstrip("/") + "/") for b in bound):
            continue
        if os.path.isdir(path):
            args += ["--perms", "0555", "--tmpfs", path, "--remount-ro", path]
        elif os.path.isfile(path):
            args += ["--ro-bind", "/dev/null", path]
    return [*args, "--remount-ro", "/", "--chdir", "/tmp", "--"]


async def choose(
    mechanisms: list[str], probe: Callable[[str], list[str]], job: Callable[[str, str], bytes]
) -> Containment:
    """Try each mechanism with a probe child; the first that builds its private root wins.

    ``probe(mechanism)`` is the command line of a fresh child, ``job(mechanism, workdir)``
    its marshalled probe job.
    """
    reasons: list[str] = []
    for mechanism in mechanisms:
        if mechanism == "limits only":
            note = "; ".join(reasons) or "isolate=False"
            return Containment(mechanism, note)
        try:
            isolation = await _probe(probe(mechanism), job, mechanism)
        except SandboxError as exc:
            reasons.append(f"{mechanism}: {exc}")
            continue
        if isolation.get("filesystem") == "private root" and "error" not in isolation:
            return Containment(mechanism)
        reasons.append(f"{mechanism}: {isolation.get('error') or isolation}")
    raise SandboxError(f"sandbox containment {mechanisms[0]!r} is not available here: {'; '.join(reasons)}")


async def _probe(command: list[str], job: Callable[[str, str], bytes], mechanism: str) -> dict[str, str]:
    workdir = tempfile.mkdtemp(prefix="koderz-probe-")
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=workdir,
            start_new_session=True,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(job(mechanism, workdir)), PROBE_SECONDS)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise SandboxError(f"no answer in {PROBE_SECONDS:.0f} s") from None
    except OSError as exc:
        raise SandboxError(str(exc)) from exc
    finally:
        await asyncio.to_thread(shutil.rmtree, workdir, True)
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith("S 0 "):
            try:
                return {str(k): str(v) for k, v in json.loads(line[4:]).items()}
            except (ValueError, AttributeError):
                break
    detail = err.decode("utf-8", "replace").strip().splitlines()
    raise SandboxError(f"exit code {proc.returncode}: {detail[-1][:300] if detail else 'no output'}")


def python_command(source: str) -> list[str]:
    """A fresh child interpreter: the real binary (inside bwrap a venv's link may not resolve)."""
    return [os.path.realpath(sys.executable), "-I", "-S", "-B", "-c", source]
