"""Which containment this machine gives an attempt, found by trying each once, strongest first.

``root_namespaces`` (koderz runs as root), ``user_namespaces`` (anyone, where the kernel
allows unprivileged user namespaces), ``bubblewrap`` (``bwrap`` on PATH works: e.g.
Ubuntu's AppArmor lets bwrap, not python, create user namespaces) and ``limits_only``
(rlimits, own session, empty environment, an unprivileged uid as root). A probe is one
contained child run with no program: the mechanism holds when it reports a private root.
``auto`` never falls back to ``limits_only``: when no isolating mechanism holds, the run
stops before any attempt (``SandboxError``) naming what was tried and how to opt in.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from koderz.errors import SandboxError

log = logging.getLogger(__name__)


class Mechanism(StrEnum):
    """How an attempt is contained (``sandbox.containment`` takes these names, or ``auto``)."""

    ROOT_NAMESPACES = "root_namespaces"
    USER_NAMESPACES = "user_namespaces"
    BUBBLEWRAP = "bubblewrap"
    LIMITS_ONLY = "limits_only"

    @property
    def namespaces(self) -> bool:
        """The child itself enters namespaces and builds its private root (bwrap does it for ``bubblewrap``)."""
        return self in (Mechanism.ROOT_NAMESPACES, Mechanism.USER_NAMESPACES)

    @property
    def isolating(self) -> bool:
        """Private namespaces and root: anything but ``limits_only``."""
        return self is not Mechanism.LIMITS_ONLY


AUTO = "auto"
STRENGTH = {  # weakest first: what a figure made of several verdicts can claim
    Mechanism.LIMITS_ONLY: 0,
    Mechanism.BUBBLEWRAP: 1,
    Mechanism.USER_NAMESPACES: 1,
    Mechanism.ROOT_NAMESPACES: 2,
}


def weakest(mechanisms: Iterable[Mechanism | None]) -> Mechanism | None:
    """The weakest containment among verdicts (None when none says)."""
    known = [m for m in mechanisms if m is not None]
    return min(known, key=STRENGTH.__getitem__) if known else None


PROBE_SECONDS = 30.0
HINT = (
    "for full containment allow unprivileged user namespaces (sysctl user.max_user_namespaces, or"
    " kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu), install bubblewrap, or run as root in a container"
)
DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")


@dataclass(frozen=True)
class Containment:
    """The mechanism chosen, why stronger ones did not hold, and how to get the full one."""

    mechanism: Mechanism
    note: str = ""

    @property
    def full(self) -> bool:
        return self.mechanism.isolating

    def report(self) -> dict[str, str]:
        """What ``verdict.isolation`` adds: why not stronger, and how to get the full one."""
        return {} if self.full else {"note": self.note, "hint": HINT}

    def summary(self) -> str:
        """One line for the log and the run summary."""
        if self.full:
            return f"sandbox containment: {self.mechanism}"
        return f"sandbox containment: {self.mechanism} ({self.note}); {HINT}"


def parse(name: str) -> Mechanism | None:
    """``sandbox.containment``: a mechanism, or None for ``auto``; anything else is a ``SandboxError``."""
    if name == AUTO:
        return None
    try:
        return Mechanism(name)
    except ValueError:
        names = ", ".join([AUTO, *Mechanism])
        raise SandboxError(f"sandbox.containment={name!r} is not one of {names}") from None


def candidates(root: bool, isolate: bool, forced: str = AUTO) -> list[Mechanism]:
    """Mechanisms to try, strongest first; ``forced`` (a ``Mechanism`` name) allows only that one.
    ``auto`` tries only the isolating ones; ``isolate=False`` means ``limits_only``."""
    chosen = parse(forced)
    if chosen is not None:
        return [chosen]
    if not isolate:
        return [Mechanism.LIMITS_ONLY]
    return [*([Mechanism.ROOT_NAMESPACES] if root else []), Mechanism.USER_NAMESPACES, Mechanism.BUBBLEWRAP]


def bwrap_command(root_paths: list[str], hide: list[str], tmp_mb: int, cgroups: list[str]) -> list[str]:
    """bwrap arguments building the same private root as the namespace mechanisms (plus the
    attempt's cgroup directories, writable, so that the child can join them). bwrap's ``--tmpfs``
    takes a size but no inode budget."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError("bwrap is not on PATH")
    args = [bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--as-pid-1", "--cap-drop", "ALL"]
    # the private /tmp first, as the namespace mechanisms do: a root path under /tmp is bound on top
    args += ["--size", str(tmp_mb * 2**20), "--perms", "1777", "--tmpfs", "/tmp"]
    for path in root_paths:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    for device in DEVICES:
        args += ["--dev-bind", device, device]
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
    mechanisms: list[Mechanism], probe: Callable[[Mechanism], list[str]], job: Callable[[Mechanism, str], bytes]
) -> Containment:
    """Try each mechanism with a probe child; the first that builds its private root wins.

    ``probe(mechanism)`` is the command line of a fresh child, ``job(mechanism, workdir)``
    its marshalled probe job. ``limits_only`` (only ever asked for explicitly) holds when its
    child could set itself up (as root: drop to the unprivileged uid).
    When none holds: a ``SandboxError`` naming what was tried and how to opt in to less.
    """
    reasons: list[str] = []
    for mechanism in mechanisms:
        try:
            isolation = await _probe(probe(mechanism), job, mechanism)
        except SandboxError as exc:
            reasons.append(f"{mechanism}: {exc}")
            continue
        if mechanism is Mechanism.LIMITS_ONLY and "error" not in isolation:
            return Containment(mechanism, "asked for (sandbox.containment=limits_only or isolate=False)")
        if isolation.get("filesystem") == "private root" and "error" not in isolation:
            return Containment(mechanism)
        reasons.append(f"{mechanism}: {isolation.get('error') or isolation}")
    tried = "; ".join(reasons)
    if len(mechanisms) == 1:
        raise SandboxError(f"sandbox.containment={mechanisms[0]} is not available here: {tried}")
    raise SandboxError(
        f"no isolating sandbox works here ({tried}); {HINT}, or run without isolation explicitly with"
        f" sandbox.containment={Mechanism.LIMITS_ONLY}"
    )


async def _probe(command: list[str], job: Callable[[Mechanism, str], bytes], mechanism: Mechanism) -> dict[str, str]:
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
    """A fresh child interpreter: the real binary (inside bwrap a venv's link may not resolve).
    It reads ``source`` (its first ``len(source.encode())`` bytes of stdin, before its job) so
    that ``ps`` shows this short line, not the program: write ``with_program(source, job)``."""
    size = len(source.encode())
    boot = (
        f"import os\nprogram = b''\nwhile len(program) < {size}:\n"
        f"    chunk = os.read(0, {size} - len(program))\n    if not chunk:\n        raise SystemExit(1)\n"
        "    program += chunk\nexec(compile(program, '<string>', 'exec'))"
    )
    return [os.path.realpath(sys.executable), "-I", "-S", "-B", "-c", boot]


def with_program(source: str, job: bytes) -> bytes:
    """What a ``python_command(source)`` process reads on stdin: its program, then its job."""
    return source.encode() + job
