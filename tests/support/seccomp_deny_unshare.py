"""Run a command where no new mount or user namespace can be made: ``unshare`` and ``clone`` with
``CLONE_NEWUSER`` or ``CLONE_NEWNS`` fail with EPERM, ``clone3`` with ENOSYS (so glibc falls back to
``clone``, whose flags the filter can read), as under the default seccomp profile of common container
runtimes. Installed with ``prctl(PR_SET_NO_NEW_PRIVS)`` and a classic BPF filter through ctypes.

    python seccomp_deny_unshare.py COMMAND [ARG...]
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys

# audit arch, then syscall numbers of unshare, clone, clone3
ARCHES = {"x86_64": (0xC000003E, 272, 56, 435), "aarch64": (0xC00000B7, 97, 220, 435)}
DENIED_FLAGS = 0x10000000 | 0x00020000  # CLONE_NEWUSER | CLONE_NEWNS
EPERM, ENOSYS = 1, 38
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
LD_W_ABS, JEQ_K, JSET_K, RET_K = 0x20, 0x15, 0x45, 0x06


def bpf_program(arch: int, unshare: int, clone: int, clone3: int) -> bytes:
    """seccomp_data: nr at 0, arch at 4, args[0] (low half) at 16; jumps count from the next one."""
    program = [
        (LD_W_ABS, 0, 0, 4),  # 0
        (JEQ_K, 0, 6, arch),  # 1: another arch -> 8 allow
        (LD_W_ABS, 0, 0, 0),  # 2
        (JEQ_K, 6, 0, clone3),  # 3: -> 10 ENOSYS
        (JEQ_K, 1, 0, unshare),  # 4: -> 6 flags
        (JEQ_K, 0, 2, clone),  # 5: not clone -> 8 allow
        (LD_W_ABS, 0, 0, 16),  # 6: flags
        (JSET_K, 1, 0, DENIED_FLAGS),  # 7: -> 9 EPERM
        (RET_K, 0, 0, SECCOMP_RET_ALLOW),  # 8
        (RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM),  # 9
        (RET_K, 0, 0, SECCOMP_RET_ERRNO | ENOSYS),  # 10
    ]
    return b"".join(struct.pack("HBBI", *instruction) for instruction in program)


def deny_unshare() -> None:
    """Install the filter on this process (inherited by everything it executes)."""
    install(bpf_program(*ARCHES[os.uname().machine]))


def install(code: bytes) -> None:
    """Install the classic BPF ``code`` as this process's seccomp filter (after no_new_privs)."""
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
    deny_unshare()
    os.execvp(sys.argv[1], sys.argv[1:])
