"""The sandboxed child: contain itself, run the candidate on each input, stream outputs.

Run by the parent as ``python -I -S -B -c <answers/wire.py + this file>`` (stdlib only; it
cannot import koderz; it imports as little as it can, since every attempt pays for it).
It reads one marshalled job from stdin (inputs marshalled one by one), joins the
attempt's cgroups, then enters the containment the parent chose: new user (when not
root), mount, network, PID, IPC and UTS namespaces, a minimal read-only root (/usr,
/etc, the Python installation's lib, an empty tmpfs /tmp; site-packages and every path
the parent names hidden), chroot, resource limits, an unprivileged uid (root) or no
capabilities (user namespace), a fresh session keyring, stdin closed (``bubblewrap``:
bwrap built all that before; ``limits_only``: rlimits, and as root an unprivileged uid). Then it executes the program and
calls the entry point on each input, writing one line per result to its results fd:
``V <i> <wire text>``, ``H <i> <sha256> <length> <head>`` for long answers, ``E <i> <json
error>``; ``S`` (setup
report), ``L`` (load error) and ``D`` (done) frame them. With ``job["budgets"]`` each call
runs under a CPU-time timer of its own; a call cut there is reported as an ``E`` line. It never sees expected
outputs: the verdict is decided by the parent.
"""

import _signal
import ctypes
import marshal
import os
import resource
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # at run time: answers/wire.py (and in the fork server framing.py), inlined before this file
    from koderz.answers.wire import MAX_OUTPUT, UnencodableValue, encode, json_text
    from koderz.framing import FDS_LIMIT, Kind, Message, receive, send

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
NAMESPACES = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_RELATIME, MS_PRIVATE = 1024, 2048, 4096, 16384, 1 << 21, 1 << 18
LOCKED_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME  # statvfs uses the same bits
PR_SET_PDEATHSIG, PR_SET_NAME, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 15, 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL, CAPABILITY_VERSION_3 = 4, 0x20080522
KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_CLEAR, KEYCTL_GET_PERSISTENT = 1, 7, 22
KEY_SPEC_SESSION_KEYRING, KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING = -3, -4, -5
SYS_KEYCTL = {"x86_64": 250, "aarch64": 219, "riscv64": 219, "loongarch64": 219}
# koderz.sandbox.mechanism.Mechanism's values (this file runs without koderz)
ROOT_NAMESPACES, USER_NAMESPACES, BUBBLEWRAP, LIMITS_ONLY = (
    "root_namespaces",
    "user_namespaces",
    "bubblewrap",
    "limits_only",
)
NAMESPACE_MECHANISMS = (ROOT_NAMESPACES, USER_NAMESPACES)
ORPHANED_EXIT = 123  # the parent died before the attempt could ask to die with it
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, MMAP_THRESHOLD = -1, -3, 32 * 1024 * 1024  # glibc's mallopt

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _c_string(text):
    return None if text is None else text.encode()


def _mount(source, target, fstype, flags, data=None):
    c = _c_string
    _check(_libc.mount(c(source), c(target), c(fstype), flags, c(data)), f"mount {target}")


def _bind(source, target, writable=False):
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _mount(source, target, None, MS_BIND | MS_REC)
    # a mount inherited from a more privileged namespace keeps its nosuid/nodev/noexec/atime flags
    locked = os.statvfs(target).f_flag & LOCKED_FLAGS
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | locked | (0 if writable else MS_RDONLY)
    _mount(None, target, None, flags)


def _build_root(root, job):
    """Mount a minimal read-only root at ``root`` (inside our private mount ns)."""
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    # the private /tmp first: a root path that lives under /tmp (a library environment there) is
    # bound on top of it instead of being covered by it
    os.makedirs(root + "/tmp", exist_ok=True)
    limits = job["limits"]
    tmp = f"size={limits['tmp_mb']}m,nr_inodes={limits['tmp_inodes']},mode=1777"
    _mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, tmp)
    for path in job["root_paths"]:
        if os.path.islink(path):
            target = root + path
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(os.readlink(path), target)
        elif os.path.exists(path):
            _bind(path, root + path)
    for dev in ("null", "zero", "random", "urandom"):
        _bind("/dev/" + dev, root + "/dev/" + dev, writable=True)
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


def _world_readable():
    """Can an unprivileged uid import the standard library (every parent directory searchable)?"""
    path = os.path.dirname(os.__file__)
    while True:
        if not os.stat(path).st_mode & 0o001:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def _threads():
    """This process's threads (0 when /proc cannot tell)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _join_cgroups(job, isolation):
    """Move this process (so every process it starts) into the attempt's cgroups; on success
    ``job["budget"]`` (the cgroups' limits) replaces the rlimits in the report. Writing ``0`` into
    a v1 ``tasks`` file moves the calling thread, i.e. the whole process while it has one thread
    (forked, or a fresh interpreter that started none); otherwise it joins by ``cgroup.procs``."""
    try:
        single = _threads() == 1
        for path in job["cgroups"]:
            if not single and os.path.basename(path) == "tasks":
                path = os.path.join(os.path.dirname(path), "cgroup.procs")
            with open(path, "w") as handle:
                handle.write("0")
        if job["cgroups"]:
            isolation.update(job["budget"])
    except OSError as exc:
        isolation["memory"] = f"rlimit per process (joining the cgroup failed: {exc.strerror})"


def _enter_user_namespace():
    """A new user namespace (with the other namespaces) mapping our uid and gid to themselves."""
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(CLONE_NEWUSER | NAMESPACES), "unshare")
    for name, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"), ("gid_map", f"{gid} {gid} 1")):
        with open("/proc/self/" + name, "w") as handle:
            handle.write(text)


def _drop_capabilities():
    """Give up every capability the new user namespace granted (bounding, ambient, then all sets)."""
    cap = 0
    while _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.capset(header, data), "capset")


def _fresh_keyrings(clear_user_keyrings):
    """A new session keyring; as a slot uid, also empty the uid's user keyrings an earlier attempt filled."""
    number = SYS_KEYCTL.get(os.uname().machine)
    if number is None:
        return f"unchanged (keyctl number unknown on {os.uname().machine})"
    keyctl = _libc.syscall
    if keyctl(number, KEYCTL_JOIN_SESSION_KEYRING, None) < 0:
        return f"unchanged ({os.strerror(ctypes.get_errno())})"
    if not clear_user_keyrings:
        return "fresh session keyring"
    for keyring in (KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING):
        _check(keyctl(number, KEYCTL_CLEAR, keyring), "keyctl clear")
    persistent = keyctl(number, KEYCTL_GET_PERSISTENT, -1, KEY_SPEC_SESSION_KEYRING)
    if persistent >= 0:
        _check(keyctl(number, KEYCTL_CLEAR, persistent), "keyctl clear persistent")
    return "fresh session keyring, user keyrings emptied"


def _wait_for(child):
    """The waiter outside the PID namespace: exits with PID 1's status (128 + the signal that
    killed it). Its reaper's ``wait4`` counts PID 1's CPU time with its own; koderz decides a
    timeout from that (or from the cgroup), never from this code."""
    _signal.signal(_signal.SIGTERM, lambda *_: os.kill(child, _signal.SIGKILL))
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def _contain(job, isolation):
    """Enter the containment the parent chose (``job["mechanism"]``) and record what held.

    ``root_namespaces`` and ``user_namespaces`` build the same private root and drop every
    privilege (a per-slot uid as root, all capabilities in a user namespace); ``bubblewrap``
    finds them built by bwrap; ``limits_only`` sets the rlimits (as root: the slot uid or nothing). A step the mechanism needs
    that fails raises OSError: the attempt is then an error, never run uncontained.
    """
    mechanism = isolation["mechanism"] = job["mechanism"]
    if mechanism == LIMITS_ONLY and os.geteuid() == 0 and job.get("uid") is None:
        raise OSError(1, "limits_only as root needs an unprivileged uid to run the program as")
    _join_cgroups(job, isolation)
    if mechanism == USER_NAMESPACES:
        _enter_user_namespace()
    elif mechanism == ROOT_NAMESPACES:
        _check(_libc.unshare(NAMESPACES), "unshare")
    if mechanism in NAMESPACE_MECHANISMS:
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
    if mechanism != LIMITS_ONLY:
        isolation.update(network="namespace", pid="namespace")
        child = os.fork()
        if child:  # the waiter: outlives nothing it started; its death kills PID 1 below
            _wait_for(child)
        # below: PID 1 of the new PID namespace (under bwrap, PID 2); when it dies, all inside die.
    limits = job["limits"]
    if mechanism in NAMESPACE_MECHANISMS:
        _build_root(job["workdir"], job)
        os.chdir(job["workdir"])
        os.chroot(".")
        isolation["tmp"] = f"private tmpfs {limits['tmp_mb']} MB, {limits['tmp_inodes']} inodes"
    if mechanism == LIMITS_ONLY:
        os.chdir(job["workdir"])
        isolation["tmp"] = "the host's /tmp (working directory: a private one)"
    else:
        os.chdir("/tmp")
        isolation["filesystem"] = "private root"
    if mechanism == BUBBLEWRAP:
        isolation["tmp"] = f"private tmpfs {limits['tmp_mb']} MB (bwrap sets no inode budget)"
    _set_limits(limits)
    uid = job.get("uid")
    if mechanism in (USER_NAMESPACES, BUBBLEWRAP):
        _drop_capabilities()
        isolation["user"] = f"uid {os.getuid()} in a user namespace, no capabilities"
    elif uid is not None:  # as root: never run the program as uid 0 (fail closed)
        if mechanism == LIMITS_ONLY and not _world_readable():
            raise OSError(13, "the Python installation is not readable by an unprivileged uid")
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        isolation["user"] = f"uid {uid}"
    else:
        isolation["user"] = f"unchanged (uid {os.geteuid()})"
    isolation["keyrings"] = _fresh_keyrings(uid is not None and isolation["user"] == f"uid {uid}")
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, _signal.SIGKILL, 0, 0, 0)


class OverBudget(BaseException):
    """Raised into the candidate when an input has used its CPU time budget (``job["budgets"]``)."""


def _describe(exc):
    return f"{type(exc).__name__}: {str(exc)[:500]}"


_SOURCES: dict[str, str] = {}  # file name -> source, so that tracebacks show the program's lines


def _short_tb(limit=6):
    import linecache
    import traceback

    for name, source in _SOURCES.items():
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    lines = traceback.format_exc(limit=-limit).splitlines()
    kept = [line for line in lines if "koderz" not in line and 'File "<string>"' not in line]
    text = "\n".join(kept)
    return text if len(text) <= 2000 else kept[0] + "\n  ...\n" + text[-1900:]


def _tune_malloc():
    """Let big values reuse heap pages instead of faulting in fresh ones for each (glibc's
    mallopt; elsewhere skipped): encoding a long answer, or a program's big ints, no longer
    spends its time in page faults."""
    try:
        mallopt = _libc.mallopt
    except AttributeError:
        return
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(M_TRIM_THRESHOLD, 4 * MMAP_THRESHOLD)


def _die_with(parent):
    """SIGKILL this process when ``parent`` (koderz or its fork server) dies, even abruptly."""
    _libc.prctl(PR_SET_PDEATHSIG, _signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the prctl took effect
        os._exit(ORPHANED_EXIT)


def main(parent=None):
    _die_with(parent or os.getppid())
    _libc.prctl(PR_SET_NAME, b"kz-attempt", 0, 0, 0)  # what ps and top show
    _tune_malloc()
    job = marshal.loads(sys.stdin.buffer.read())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    results = os.fdopen(os.dup(1), "w", buffering=1 << 16)
    os.dup2(2, 1)  # the candidate's prints go to the capped stderr pipe
    limits = job["limits"]
    isolation = {"network": "shared", "pid": "shared", "filesystem": "shared"}
    isolation.update(
        memory=f"rlimit per process {limits['memory_mb']} MB",
        processes=f"rlimit {limits['processes']} (threads count)",
        cpu="rlimit per process",
    )
    try:
        _contain(job, isolation)
        failure = None
    except OSError as exc:  # fail closed: the program does not run without the containment chosen
        failure = isolation["error"] = f"containment failed: {exc}"
    os.environ.clear()
    os.environ.update(job["env"])
    send_limit = job["send_limit"]
    flush_at = job["base_count"] - 1  # the base answers reach the judge even if a plus input never ends

    def emit(kind, index, payload):
        results.write(f"{kind} {index} {payload}\n")
        # also after answers 0, 1, 3, 7, ... (deterministic): the judge sees an early failure early,
        # and with first_failure the attempt is stopped before it runs much further
        if index == flush_at or not index & (index + 1):
            results.flush()

    emit("S", 0, json_text(isolation))
    if failure or job.get("probe"):
        if failure:
            emit("L", 0, json_text({"err": "SandboxError: " + failure, "tb": ""}))
        results.flush()
        os._exit(0)
    results.flush()
    namespace = {"__name__": "__candidate__", "__builtins__": __builtins__}
    try:
        # two units in one namespace: tracebacks count the program's lines as the model wrote them
        _SOURCES.update({"prompt.py": job["preamble"], "candidate.py": job["program"]})
        # dont_inherit: this source's `from __future__ import annotations` must not reach the
        # candidate (its annotations are evaluated, as in EvalPlus: an unimported List is a NameError)
        exec(compile(job["preamble"], "prompt.py", "exec", dont_inherit=True), namespace)
        exec(compile(job["program"], "candidate.py", "exec", dont_inherit=True), namespace)
        if job["entry_point"] not in namespace:
            raise NameError("the program defines no {} (the entry point the tests call)".format(job["entry_point"]))
        function = namespace[job["entry_point"]]
        if not callable(function):
            raise TypeError("{} is not a function".format(job["entry_point"]))
    except BaseException as exc:  # noqa: BLE001 - whatever the candidate raises is reported
        emit("L", 0, json_text({"err": _describe(exc), "tb": _short_tb()}))
        results.flush()
        os._exit(0)
    budgets = job.get("budgets")
    cut = []  # the SIGPROF handler's mark: the current input used its budget (even if caught)

    def over_budget(signum, frame):
        cut.append(True)
        raise OverBudget

    if budgets:
        _signal.signal(_signal.SIGPROF, over_budget)
    for index, raw in enumerate(job["inputs"]):
        args = marshal.loads(raw)  # decoded afresh for each call: the candidate gets its own copy
        try:
            if budgets:
                _signal.setitimer(_signal.ITIMER_PROF, budgets[index])
            value = function(*args)
            if budgets:
                _signal.setitimer(_signal.ITIMER_PROF, 0)
            if cut:  # the candidate caught the cut and returned anyway: still over its budget
                raise OverBudget
            text = encode(value)
            if len(text) > MAX_OUTPUT:
                raise UnencodableValue(f"answer of {len(text)} characters exceeds the cap of {MAX_OUTPUT}")
        except BaseException as exc:  # noqa: BLE001 - whatever the candidate raises is reported
            if budgets:
                _signal.setitimer(_signal.ITIMER_PROF, 0)
            if budgets and (cut or type(exc) is OverBudget):
                cut.clear()
                error = {"err": f"TimeoutError: over this input's CPU time budget of {budgets[index]:.3g} s", "tb": ""}
            else:
                error = {"err": _describe(exc), "tb": _short_tb()}
            emit("E", index, json_text(error))
            continue
        if len(text) > send_limit:
            digest = __import__("hashlib").sha256(text.encode()).hexdigest()
            emit("H", index, f"{digest} {len(text)} {text[:200]}")
        else:
            emit("V", index, text)
    emit("D", 0, "")
    results.flush()
    os._exit(0)


def _fork_attempt(fds, control, wake_fds, zygote_pid):
    """Fork one attempt with ``fds`` as its stdin, results and output; returns its pid."""
    pid = os.fork()
    if pid == 0:
        _die_with(zygote_pid)
        _signal.set_wakeup_fd(-1)
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        control.close()
        for fd in wake_fds:
            os.close(fd)
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.closerange(3, MAX_FD)  # whatever else the zygote holds (a preloaded library's files too)
        try:
            main(zygote_pid)
        finally:
            os._exit(1)
    return pid


def _signal_attempt(pid, live, kill_group):
    """SIGKILL attempt ``pid``'s process group, or SIGTERM the attempt, if it is not reaped yet."""
    if pid in live:
        try:
            if kill_group:
                os.killpg(pid, _signal.SIGKILL)
            else:
                os.kill(pid, _signal.SIGTERM)
        except OSError:
            pass


PRELOAD = ("typing", "collections", "math", "re", "itertools", "functools", "string", "heapq", "bisect", "operator")
MAX_FD = 1 << 16


def _preload(paths, modules, control):
    """Import the environment's ``modules`` (found on ``paths``, bound at the same paths in every
    attempt's root) once, so that each attempt forks with them loaded. A module that fails is
    reported (``NOT_LOADED <name> <why>``) and left to load per attempt; ``PRELOADED <threads>`` ends
    the report (a zygote that forks must stay single-threaded: more than one thread is reported).
    ``sys.path`` is restored after: an attempt finds the libraries only where it looks for them."""
    saved = sys.path[:]
    sys.path[:0] = [p for p in paths if p not in sys.path]
    for name in modules:
        try:
            __import__(name)
            send(control, Message(Kind.LOADED, name))
        except BaseException as exc:  # noqa: BLE001 - a library that cannot load here loads per attempt
            send(control, Message(Kind.NOT_LOADED, name, f"{type(exc).__name__}: {exc}"[:160]))
    sys.path[:] = saved
    send(control, Message(Kind.PRELOADED, len(os.listdir("/proc/self/task"))))


def zygote():
    """Fork server: preload common stdlib modules once, then fork one attempt per request.

    ``sys.argv[2]`` (marshalled, hex) names the library paths and modules to preload
    (``_preload``). Requests (``koderz.framing`` messages) arrive on the SEQPACKET socket named by
    ``sys.argv[3]``: ``FORK <token>`` with the attempt's stdin, results and output pipe ends
    (SCM_RIGHTS). The fork closes every zygote fd, starts its own session and runs ``main``
    exactly as a fresh process would. The zygote answers ``STARTED <token> <pid>`` and, when it
    reaps one, ``EXITED <pid> <exit code> <cpu seconds>``. ``KILL <pid>`` SIGKILLs that attempt's
    process group and ``TERMINATE <pid>`` SIGTERMs the attempt, if it is not reaped yet; each
    attempt's group is killed just before the attempt is reaped. So a pid is never signalled after
    it could have been reused. It never runs candidate code; it exits when the parent closes the
    socket (and fails on what is no request).
    """
    import select
    import socket

    for name in PRELOAD:
        __import__(name)
    _libc.prctl(PR_SET_PDEATHSIG, _signal.SIGKILL, 0, 0, 0)
    _libc.prctl(PR_SET_NAME, b"kz-forkserver", 0, 0, 0)
    zygote_pid = os.getpid()
    control = socket.socket(fileno=int(sys.argv[3]))
    paths, modules = marshal.loads(bytes.fromhex(sys.argv[2]))
    _preload(paths, modules, control)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    _signal.signal(_signal.SIGCHLD, lambda *_: None)
    _signal.set_wakeup_fd(wake_w)
    live: set[int] = set()  # attempts forked and not yet reaped
    while True:
        try:
            ready = select.select([control.fileno(), wake_r], [], [])[0]
        except InterruptedError:
            continue
        if wake_r in ready:
            os.read(wake_r, 4096)
        if control.fileno() in ready:
            request = receive(control, FDS_LIMIT)  # what is no request ends the fork server: koderz sees it lost
            if request is None:
                os._exit(0)
            message, fds = request
            if message.kind in (Kind.KILL, Kind.TERMINATE):  # signal an attempt only while unreaped (no pid reuse)
                _signal_attempt(message.field(0, int), live, message.kind is Kind.KILL)
            else:
                forking = message.kind is Kind.FORK and len(fds) == 3
                pid = _fork_attempt(fds, control, (wake_r, wake_w), zygote_pid) if forking else -1
                for fd in fds:
                    os.close(fd)
                if pid > 0:
                    live.add(pid)
                send(control, Message(Kind.STARTED, message.fields[0], pid))
        while True:
            try:  # look before reaping: the group is killed while its leader's pid is still ours
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                break
            if info is None:
                break
            _signal_attempt(info.si_pid, live, True)
            live.discard(info.si_pid)
            _, status, usage = os.wait4(info.si_pid, 0)
            cpu = usage.ru_utime + usage.ru_stime  # the attempt and every descendant it reaped
            send(control, Message(Kind.EXITED, info.si_pid, os.waitstatus_to_exitcode(status), f"{cpu:.3f}"))


if sys.argv[1:2] == ["zygote"]:
    zygote()
else:
    main()
