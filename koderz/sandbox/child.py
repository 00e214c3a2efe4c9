"""The sandboxed child: contain itself, run the candidate on each input, stream outputs.

Run by the parent as ``python -I -S -B -c <wire.py + this file>`` (stdlib only; it
cannot import koderz). It reads one JSON job from stdin, then, when it may:
unshares mount/network/PID/IPC/UTS namespaces, builds a minimal read-only root (the
Python installation, /usr, /etc, an empty tmpfs /tmp, with site-packages and every
path the parent names hidden), chroots, sets resource limits, drops to an unprivileged
uid and closes stdin. Then it executes the program and calls the entry point on each
input, writing one JSON line per result to its results fd. It never sees expected
outputs: the verdict is decided by the parent.
"""

import ctypes
import json
import os
import resource
import signal
import sys
import time
import traceback

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT = 1, 2, 4, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
MAX_LINE = 48 * 1024 * 1024

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, "%s: %s" % (what, os.strerror(errno)))


def _mount(source, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), "mount %s" % target)


def _bind(source, target, writable=False):
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _mount(source, target, None, MS_BIND | MS_REC)
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | (0 if writable else MS_RDONLY)
    _mount(None, target, None, flags)


def _build_root(root, job):
    """Mount a minimal read-only root at ``root`` (inside our private mount ns)."""
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for path in job["root_paths"]:
        if os.path.islink(path):
            target = root + path
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(os.readlink(path), target)
        elif os.path.exists(path):
            _bind(path, root + path)
    for dev in ("null", "zero", "random", "urandom"):
        _bind("/dev/" + dev, root + "/dev/" + dev, writable=True)
    os.makedirs(root + "/tmp", exist_ok=True)
    _mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
           "size=%dm,mode=1777" % job["limits"]["tmp_mb"])
    for path in job["hide"]:
        target = root + path
        if os.path.isdir(target):
            _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=0555")
        elif os.path.isfile(target):
            _mount("/dev/null", target, None, MS_BIND)
    _mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _set_limits(limits):
    cpu = limits["cpu_seconds"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    mem = limits["memory_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_mb"] * 1024 * 1024,) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"],) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"],) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _contain(job, isolation):
    """Enter namespaces and the minimal root as far as the OS permits; record what held."""
    if job["isolate"] and os.geteuid() == 0:
        try:
            _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
            _mount(None, "/", None, MS_REC | MS_PRIVATE)
            isolation.update(network="namespace", pid="namespace")
        except OSError as exc:
            isolation["note"] = str(exc)
    if isolation.get("pid") == "namespace":
        child = os.fork()
        if child:  # the waiter: outlives nothing it started; its death kills PID 1 below
            _, status = os.waitpid(child, 0)
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
        # PID 1 of the new namespace: when it dies, the kernel kills everything inside.
        try:
            _build_root(job["workdir"], job)
            os.chdir(job["workdir"])
            os.chroot(".")
            os.chdir("/tmp")
            isolation["filesystem"] = "private root"
        except OSError as exc:
            isolation["filesystem"] = "shared (%s)" % exc
    if isolation.get("filesystem") != "private root":
        os.chdir(job["workdir"])
    _set_limits(job["limits"])
    uid = job.get("uid")
    if uid is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        isolation["user"] = "uid %d" % uid
    else:
        isolation["user"] = "unchanged (uid %d)" % os.geteuid()
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _describe(exc):
    return "%s: %s" % (type(exc).__name__, str(exc)[:500])


def _short_tb(limit=6):
    lines = traceback.format_exc(limit=-limit).splitlines()
    kept = [line for line in lines if "koderz" not in line and 'File "<string>"' not in line]
    return "\n".join(kept)[-2000:]


def main():
    job = json.loads(sys.stdin.read())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    results = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the candidate's prints go to the capped stderr pipe
    isolation = {"network": "shared", "pid": "shared", "filesystem": "shared"}
    _contain(job, isolation)
    os.environ.clear()
    os.environ.update(job["env"])

    def emit(message):
        line = json.dumps(message, separators=(",", ":"))
        if len(line) > MAX_LINE:
            line = json.dumps({"i": message.get("i"), "err": "OutputTooLarge: result exceeds %d bytes" % MAX_LINE})
        results.write(line + "\n")

    emit({"ready": isolation})
    namespace = {"__name__": "__candidate__", "__builtins__": __builtins__}
    try:
        exec(compile(job["program"], "candidate.py", "exec"), namespace)
        function = namespace[job["entry_point"]]
        if not callable(function):
            raise TypeError("%s is not a function" % job["entry_point"])
    except BaseException as exc:
        emit({"load_error": _describe(exc), "tb": _short_tb()})
        results.flush()
        os._exit(0)
    emit({"loaded": True})
    for index, raw in enumerate(job["inputs"]):
        args = from_tree(raw)  # decoded afresh for each call: the candidate gets its own copy
        started = time.process_time()
        try:
            value = function(*args)
            message = {"i": index, "out": to_tree(value)}
        except BaseException as exc:
            message = {"i": index, "err": _describe(exc), "tb": _short_tb()}
        message["cpu"] = round(time.process_time() - started, 6)
        emit(message)
    emit({"done": True})
    results.flush()
    os._exit(0)


main()
