"""Run a command where ``unshare(CLONE_NEWUSER)`` fails with EPERM (a seccomp filter).

This stands for the machines where a program cannot create user namespaces itself
(sysctl, a container's seccomp profile, Ubuntu's AppArmor restriction) while ``bwrap``
still can: bwrap creates its namespaces with ``clone()``, which the filter lets through.

    python no_userns.py COMMAND [ARG...]
"""

from __future__ import annotations

import os
import struct
import sys

# a sibling module: this file runs as a script from its own folder (also in a copy for another user)
from seccomp_deny_unshare import EPERM, JEQ_K, JSET_K, LD_W_ABS, RET_K, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, install

# (audit arch, unshare syscall number)
ARCHES = {"x86_64": (0xC000003E, 272), "aarch64": (0xC00000B7, 97)}
CLONE_NEWUSER = 0x10000000


def _filter(arch: int, unshare: int) -> bytes:
    """seccomp_data: nr at 0, arch at 4, args[0] (low half) at 16."""
    program = [
        (LD_W_ABS, 0, 0, 4),
        (JEQ_K, 0, 4, arch),  # another arch: allow
        (LD_W_ABS, 0, 0, 0),
        (JEQ_K, 0, 2, unshare),  # not unshare: allow
        (LD_W_ABS, 0, 0, 16),
        (JSET_K, 1, 0, CLONE_NEWUSER),  # CLONE_NEWUSER set: deny
        (RET_K, 0, 0, SECCOMP_RET_ALLOW),
        (RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM),
    ]
    return b"".join(struct.pack("HBBI", *instruction) for instruction in program)


def deny_user_namespaces() -> None:
    arch, unshare = ARCHES[os.uname().machine]
    install(_filter(arch, unshare))


if __name__ == "__main__":
    deny_user_namespaces()
    os.execvp(sys.argv[1], sys.argv[1:])
