"""One memory budget and one process limit per attempt, across all of its processes: cgroups.

Layout, beneath the cgroup koderz itself runs in (in each hierarchy it uses)::

    <own cgroup>/koderz/run-<pid>-<start time>-<n>/attempt-<k>

``run-...`` belongs to one ``Sandbox`` of one koderz process; it is removed when the
sandbox closes or the process exits, and a later start removes the run directories of
processes that are gone (a crash, SIGKILL), after killing anything left inside. A process
slot's attempts take turns in one ``attempt-<k>`` (``for_slot``): an attempt that leaves
nothing running inside hands it to the slot's next attempt, which counts CPU time and OOM
kills from where it starts; one that leaves a process behind has it removed (and the slot's
next attempt gets a fresh one). Each ``attempt-<k>`` is made with ``memory`` (v2 ``memory.max``, swap 0, the whole
group killed on OOM; v1 ``memory.limit_in_bytes`` and ``memsw``) and ``pids`` limits, an equal
CPU share (v2 ``cpu.weight``, v1 ``cpu.shares``: an attempt's processes share one slot's worth of
CPU however many sessions they start) and CPU accounting (v2 ``cpu.stat``, v1 ``cpuacct.usage``)
that the trusted side reads to stop the attempt at its CPU budget; the
attempt's first process joins it before it runs anything, so all its descendants are charged
to it. It joins as the single thread it still is then: v1's ``tasks`` (moving one thread needs
no grace period of the kernel's global threadgroup lock, which a write to ``cgroup.procs``
waited for: about 10 ms per attempt, measured), v2's ``cgroup.procs``. Where no writable memory cgroup is available (most
normal users; a cgroup v2 whose own cgroup also holds other processes) the budget falls
back to the per-process address-space rlimit and ``describe`` says why.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import itertools
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")
OPTIONAL = ("cpu", "cpuacct")
SHARE_V1, WEIGHT_V2 = 1024, 100  # the default CPU share of one cgroup
RUN_NAME = re.compile(r"run-(\d+)-(\d+)-\d+")
REMOVE_SECONDS = 5.0


@dataclass(frozen=True)
class Hierarchy:
    """Where koderz's own cgroup is, in one mounted hierarchy that has controllers it uses."""

    version: int  # 1 or 2
    controllers: tuple[str, ...]
    own: Path


def own_hierarchies(proc_cgroup: str, mountinfo: str) -> list[Hierarchy]:
    """Parse ``/proc/self/cgroup`` and ``/proc/self/mountinfo``: koderz's cgroup per hierarchy."""
    mounts: dict[str, tuple[str, str]] = {}  # "2" or a v1 controller -> (mount root, mount point)
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        fstype, options = fields[sep + 1], fields[sep + 3] if len(fields) > sep + 3 else ""
        root, point = _unescape(fields[3]), _unescape(fields[4])
        if fstype == "cgroup2":
            mounts.setdefault("2", (root, point))
        elif fstype == "cgroup":
            for option in options.split(","):
                if option in CONTROLLERS:
                    mounts.setdefault(option, (root, point))
    found = []
    controllers: tuple[str, ...]
    for line in proc_cgroup.splitlines():
        hierarchy_id, _, rest = line.partition(":")
        names, _, path = rest.partition(":")
        if hierarchy_id == "0" and not names:
            key, version, controllers = "2", 2, CONTROLLERS
        else:
            used = tuple(c for c in names.split(",") if c in CONTROLLERS)
            if not used:
                continue
            key, version, controllers = used[0], 1, used
        if key not in mounts:
            continue
        root, point = mounts[key]
        if root != "/" and not (path + "/").startswith(root.rstrip("/") + "/"):
            continue  # our cgroup is outside what this mount shows
        relative = path[len(root) :] if root != "/" else path
        found.append(Hierarchy(version, controllers, Path(point + "/" + relative.strip("/")).resolve()))
    return found


def _unescape(text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


class AttemptCgroup:
    """The cgroups of one attempt: the child writes ``0`` into each of ``joins`` to join (it is
    single-threaded then); ``procs`` list the processes inside."""

    def __init__(self, dirs: list[tuple[Hierarchy, Path]], on_removed: Callable[[], None] | None = None) -> None:
        self._dirs = dirs
        self._on_removed = on_removed
        self.procs = [str(path / "cgroup.procs") for _, path in dirs]
        self.joins = [str(path / ("tasks" if hierarchy.version == 1 else "cgroup.procs")) for hierarchy, path in dirs]
        self._oom_base = 0  # the counters when the current attempt began (0: a fresh cgroup)
        self._cpu_base = 0.0

    def begin(self) -> None:
        """A new attempt in this (empty) cgroup: its OOM kills and CPU time count from now."""
        self._oom_base = self._oom_kills()
        self._cpu_base = self._cpu_total() or 0.0

    def empty(self) -> bool:
        """Nothing runs inside (False when that cannot be read)."""
        try:
            return not any(Path(procs).read_text().strip() for procs in self.procs)
        except OSError:
            return False

    def oom_killed(self) -> bool:
        """Did the kernel kill one of the attempt's processes at its memory limit (its own counter)?"""
        return self._oom_kills() > self._oom_base

    def _oom_kills(self) -> int:
        kills = 0
        for hierarchy, path in self._dirs:
            if "memory" not in hierarchy.controllers:
                continue
            name = "memory.events" if hierarchy.version == 2 else "memory.oom_control"
            with contextlib.suppress(OSError, ValueError):
                for line in (path / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key in ("oom_kill", "oom_group_kill"):
                        kills += int(value)
        return kills

    def cpu_seconds(self) -> float | None:
        """CPU time used by all of the attempt's processes so far; None without CPU accounting."""
        total = self._cpu_total()
        return None if total is None else total - self._cpu_base

    def _cpu_total(self) -> float | None:
        for hierarchy, path in self._dirs:
            with contextlib.suppress(OSError, ValueError):
                if hierarchy.version == 2:
                    for line in (path / "cpu.stat").read_text().splitlines():
                        key, _, value = line.partition(" ")
                        if key == "usage_usec":
                            return int(value) / 1e6
                elif "cpuacct" in hierarchy.controllers:
                    return int((path / "cpuacct.usage").read_text()) / 1e9
        return None

    @property
    def paths(self) -> list[str]:
        return [str(path) for _, path in self._dirs]

    def kill(self, spare: int | None = None) -> None:
        """SIGKILL every process in the attempt but ``spare`` (all of it goes when one process
        hits the budget)."""
        for _, path in self._dirs:
            with contextlib.suppress(OSError):
                _kill_members(path, spare)

    def remove(self) -> set[int]:
        """Kill whatever is left inside, remove the directories; returns the pids it had to kill."""
        killed: set[int] = set()
        try:
            for _, path in self._dirs:
                killed |= _remove_tree(path)
        finally:
            if self._on_removed is not None:
                self._on_removed()
                self._on_removed = None
        return killed


class CgroupBudget:
    """This sandbox's run cgroups; ``for_slot()`` gives an attempt its cgroup (``attempt()``: a fresh
    one), ``None`` when unavailable."""

    _names = itertools.count()

    def __init__(self, memory_mb: int, processes: int, hierarchies: list[Hierarchy] | None = None) -> None:
        self.memory_mb, self.processes = memory_mb, processes
        self._active = 0  # attempts whose cgroup exists: the run's CPU weight is theirs together
        self._lock = threading.Lock()  # attempts are removed from worker threads
        self._runs: list[tuple[Hierarchy, Path]] = []
        self._attempts = itertools.count()
        self._kept: dict[int, AttemptCgroup] = {}  # a slot's cgroup, empty, for its next attempt
        self.memory = f"rlimit per process {memory_mb} MB"
        self.pids = f"rlimit {processes} (threads count)"
        self.cpu = "rlimit per process"
        self.reason = ""
        try:
            if hierarchies is None:
                hierarchies = own_hierarchies(
                    Path("/proc/self/cgroup").read_text(), Path("/proc/self/mountinfo").read_text()
                )
            self._open(hierarchies)
        except OSError as exc:
            self._close_runs()
            self.reason = f"no usable cgroup ({exc.strerror or exc}: {exc.filename or ''})".replace(": )", ")")
        if not self._runs and not self.reason:
            self.reason = "no memory cgroup mounted"
        if self._runs:
            atexit.register(self.close)

    @property
    def active(self) -> bool:
        return bool(self._runs)

    @property
    def run_paths(self) -> list[Path]:
        """This sandbox's run cgroup directories (one per hierarchy used)."""
        return [run for _, run in self._runs]

    def _open(self, hierarchies: list[Hierarchy]) -> None:
        run = f"run-{os.getpid()}-{_start_time(os.getpid())}-{next(self._names)}"
        chosen: dict[str, Hierarchy] = {}
        for hierarchy in hierarchies:
            for controller in hierarchy.controllers:
                if controller not in chosen and (hierarchy.version == 1 or _available(hierarchy, controller)):
                    if controller in OPTIONAL and not os.access(hierarchy.own, os.W_OK):
                        continue  # CPU sharing and accounting where koderz may; memory fails loudly
                    chosen[controller] = hierarchy
        if "memory" not in chosen:
            return
        for hierarchy in dict.fromkeys(chosen.values()):
            used = tuple(c for c in hierarchy.controllers if chosen.get(c) is hierarchy)
            home = hierarchy.own / "koderz"
            if hierarchy.version == 2:
                _enable(hierarchy.own, used)
            home.mkdir(exist_ok=True)
            sweep(home)
            if hierarchy.version == 2:
                _enable(home, used)
            (home / run).mkdir()
            self._runs.append((Hierarchy(hierarchy.version, used, hierarchy.own), home / run))
            if hierarchy.version == 2:
                _enable(home / run, used)
        versions = {c: h.version for h, _ in self._runs for c in h.controllers}
        self.memory = f"cgroup v{versions['memory']} {self.memory_mb} MB"
        if "pids" in versions:
            self.pids = f"cgroup v{versions['pids']} {self.processes} (threads count)"
        if 2 in versions.values() or "cpuacct" in versions:
            self.cpu = f"cgroup v{versions.get('cpuacct', 2)} across processes"

    def attempt(self) -> AttemptCgroup | None:
        """A fresh cgroup (one per hierarchy) for one attempt, limits set; ``None`` without cgroups."""
        if not self._runs:
            return None
        name = f"attempt-{next(self._attempts)}"
        dirs: list[tuple[Hierarchy, Path]] = []
        self._weigh(+1)
        try:
            for hierarchy, run in self._runs:
                path = run / name
                path.mkdir()
                dirs.append((hierarchy, path))
                _limit(hierarchy, path, self.memory_mb * 2**20, self.processes)
        except OSError:
            AttemptCgroup(dirs, lambda: self._weigh(-1)).remove()
            raise
        return AttemptCgroup(dirs, lambda: self._weigh(-1))

    def for_slot(self, slot: int) -> AttemptCgroup | None:
        """The cgroup of process slot ``slot``'s next attempt: the one its last attempt left empty
        (``keep``), counting from now, else a fresh one; ``None`` without cgroups."""
        kept = self._kept.pop(slot, None)
        if kept is None:
            return self.attempt()
        self._weigh(+1)
        kept.begin()
        return kept

    def keep(self, slot: int, cgroup: AttemptCgroup) -> bool:
        """After an attempt: hand ``cgroup`` to the slot's next attempt if nothing runs inside
        (True); otherwise the caller removes it (``remove`` kills what is left)."""
        if not cgroup.empty():
            return False
        self._weigh(-1)
        self._kept[slot] = cgroup
        return True

    def _weigh(self, change: int) -> None:
        """The run's CPU weight: one default cgroup's per live attempt, so that an attempt gets the
        same share of a busy machine alone or beside another (a flat share each, as a process would).
        (The ``koderz`` level above is shared by concurrent koderz processes: the last one sets it.)"""
        with self._lock:
            self._active += change
            for hierarchy, run in self._runs:
                for path in (run.parent, run):  # koderz's home too: a level at the default weight caps all below
                    with contextlib.suppress(OSError):
                        _share(hierarchy, path, max(self._active, 1))

    def close(self) -> None:
        """Remove this sandbox's run cgroups (killing anything still inside)."""
        self._close_runs()
        atexit.unregister(self.close)

    def _close_runs(self) -> None:
        self._kept.clear()
        for _, run in self._runs:
            with contextlib.suppress(OSError):
                _remove_tree(run)
        self._runs = []


def sweep(home: Path) -> None:
    """Remove run cgroups left by koderz processes that no longer exist."""
    for entry in home.iterdir():
        match = RUN_NAME.fullmatch(entry.name)
        if not match or not entry.is_dir():
            continue
        pid, start = int(match.group(1)), int(match.group(2))
        if _start_time(pid) == start:
            continue
        with contextlib.suppress(OSError):
            killed = _remove_tree(entry)
            log.info("sandbox: removed the cgroup %s of an earlier run (%d processes left in it)", entry, len(killed))


def _start_time(pid: int) -> int:
    """The process's start time in clock ticks since boot (0 if it is gone): pid reuse is not identity."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def _available(hierarchy: Hierarchy, controller: str) -> bool:
    with contextlib.suppress(OSError):
        return controller in (hierarchy.own / "cgroup.controllers").read_text().split()
    return False


def _enable(path: Path, controllers: tuple[str, ...]) -> None:
    """Delegate the controllers to ``path``'s children (v2); EBUSY when ``path`` holds processes."""
    control = path / "cgroup.subtree_control"
    present = control.read_text().split()
    missing = [c for c in controllers if c not in present]
    if missing:
        try:
            control.write_text(" ".join("+" + c for c in missing))
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise OSError(
                    exc.errno, "its own cgroup holds other processes; start koderz in a cgroup of its own", str(path)
                ) from None
            raise


def _share(hierarchy: Hierarchy, path: Path, slots: int) -> None:
    """CPU weight of ``slots`` default cgroups (where the cpu controller is used on ``path``)."""
    if "cpu" in hierarchy.controllers:
        name, unit = ("cpu.weight", WEIGHT_V2) if hierarchy.version == 2 else ("cpu.shares", SHARE_V1)
        with contextlib.suppress(FileNotFoundError):
            (path / name).write_text(str(min(unit * slots, 10000 if hierarchy.version == 2 else 262144)))


def _limit(hierarchy: Hierarchy, path: Path, memory: int, processes: int) -> None:
    _share(hierarchy, path, 1)
    if hierarchy.version == 2:
        if "memory" in hierarchy.controllers:
            (path / "memory.max").write_text(str(memory))
            with contextlib.suppress(FileNotFoundError):  # kernels without swap accounting
                (path / "memory.swap.max").write_text("0")
            with contextlib.suppress(FileNotFoundError):
                (path / "memory.oom.group").write_text("1")
        if "pids" in hierarchy.controllers:
            (path / "pids.max").write_text(str(processes))
        return
    if "memory" in hierarchy.controllers:
        (path / "memory.limit_in_bytes").write_text(str(memory))
        with contextlib.suppress(FileNotFoundError):  # swap accounting off
            (path / "memory.memsw.limit_in_bytes").write_text(str(memory))
    if "pids" in hierarchy.controllers:
        (path / "pids.max").write_text(str(processes))


def _remove_tree(path: Path) -> set[int]:
    """Kill the processes in ``path`` and its descendants, then remove them, deepest first."""
    killed: set[int] = set()
    for child in sorted((p for p in path.iterdir() if p.is_dir()), reverse=True):
        killed |= _remove_tree(child)
    deadline = time.monotonic() + REMOVE_SECONDS
    while True:
        try:
            path.rmdir()
            return killed
        except FileNotFoundError:
            return killed
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
        killed |= _kill_members(path)
        time.sleep(0.01)


def _kill_members(path: Path, spare: int | None = None) -> set[int]:
    kill = path / "cgroup.kill"
    if spare is None and kill.exists():
        with contextlib.suppress(OSError):
            kill.write_text("1")
    members = {int(p) for p in (path / "cgroup.procs").read_text().split()} - {spare}
    for pid in members:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return members
