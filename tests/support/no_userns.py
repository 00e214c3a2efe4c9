"""Run a command where ``unshare(CLONE_NEWUSER)`` fails with EPERM (a seccomp filter).

This stands for the machines where a program cannot create user namespaces itself
(sysctl, a container's seccomp profile, Ubuntu's AppArmor restriction) while ``bwrap``
still can: bwrap creates its namespaces with ``clone()``, which the filter lets through.

    python no_userns.py COMMAND [ARG...]
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys

# (audit arch, unshare syscall number)
ARCHES = {"x86_64": (0xC000003E, 272), "aarch64": (0xC00000B7, 97)}
CLONE_NEWUSER = 0x10000000
EPERM = 1
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
LD_W_ABS, JEQ_K, JSET_K, RET_K = 0x20, 0x15, 0x45, 0x06


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
    code = _filter(arch, unshare)
    buffer = ctypes.create_string_buffer(code)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(code) // 8, ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


if __name__ == "__main__":
    deny_user_namespaces()
    os.execvp(sys.argv[1], sys.argv[1:])
