"""Parent side of the fork server (``child.zygote``): attempts without interpreter start-up.

A fresh ``python -I -S`` per attempt spends most of its CPU time starting up and
importing; the zygote does that once (as a trusted process with the scrubbed
environment) and forks each attempt, which then contains itself exactly as a fresh
process does. ``ForkedProcess`` offers the slice of ``asyncio.subprocess.Process`` the
sandbox uses (``stdin``/``stderr`` streams, ``pid``, ``wait``, ``returncode``); the results
pipe is the caller's (it goes to the attempt's judge). Only the zygote kills an attempt's
process group, and only before it reaps the attempt (so never a reused pid).

A library environment's modules (BigCodeBench's pandas, matplotlib, ...) can be preloaded
(``Preload``): the zygote imports them once, before it forks anything, so an attempt pays for
them once per fork server instead of once per attempt. The zygote never runs candidate code:
each attempt is a fresh fork of it, whatever an earlier attempt did to its own copy of a module.
"""

from __future__ import annotations

import asyncio
import logging
import marshal
import os
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

from koderz.errors import SandboxError
from koderz.framing import Kind, Message
from koderz.sandbox.zygote import Zygote

log = logging.getLogger(__name__)
# the zygote's command line: it reads its program (``child.py``) from stdin, so ps shows this
BOOTSTRAP = 'import os\nexec(compile(b"".join(iter(lambda: os.read(0, 65536), b"")), "<string>", "exec"))'
PRELOAD_SECONDS = 300.0  # a preload still importing then is reported as unfinished
PRELOAD_ENV = {  # a forking zygote must stay single-threaded (BLAS pools, pyarrow's jemalloc); no display
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "JE_ARROW_MALLOC_CONF": "background_thread:false",
    "MPLBACKEND": "Agg",
}


@dataclass(frozen=True)
class Preload:
    """Modules the fork server imports once, found on ``paths`` (which every attempt's root binds
    at the same paths)."""

    paths: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in self.modules:
            if not all(part.isidentifier() for part in name.split(".")):
                raise SandboxError(f"preload: {name!r} is not a module name")


@dataclass(frozen=True)
class PreloadReport:
    """What the fork server preloaded; a failed module loads per attempt instead."""

    loaded: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)  # module -> why it did not import
    threads: int = 1  # the zygote's threads after preloading (more than 1: a library started some)


class ForkedProcess:
    """One attempt forked by the zygote; its exit code and the CPU time the zygote's ``wait4``
    counted for it (itself and every descendant it reaped) arrive over the control socket."""

    def __init__(
        self,
        server: ForkServer,
        pid: int,
        stdin: asyncio.StreamWriter,
        stderr: asyncio.StreamReader,
        exit_code: asyncio.Future[tuple[int, float]],
        transports: list[Any],
    ) -> None:
        self.pid, self.stdin, self.stderr = pid, stdin, stderr
        self._server = server
        self._exit = exit_code
        self._transports = transports

    @property
    def returncode(self) -> int | None:
        return self._exit.result()[0] if self._exit.done() and not self._exit.exception() else None

    @property
    def cpu_seconds(self) -> float | None:
        """CPU time of the attempt and the descendants it reaped, once the zygote has reaped it."""
        return self._exit.result()[1] if self._exit.done() and not self._exit.exception() else None

    async def wait(self) -> int:
        """The exit code; SandboxError when the fork server died before reporting it."""
        code, _ = await asyncio.shield(self._exit)
        return code

    def close(self) -> None:
        """Close the parent's pipe ends (after the streams have been read)."""
        for transport in self._transports:
            transport.close()

    def terminate(self) -> None:
        """SIGTERM the attempt, through the zygote (only while it has not reaped it)."""
        if self.returncode is None:
            self._server.signal(self.pid, Kind.TERMINATE)

    def kill_group(self) -> None:
        """SIGKILL the attempt's process group, through the zygote (only while it has not reaped it)."""
        if self.returncode is None:
            self._server.signal(self.pid, Kind.KILL)


class ForkServer(Zygote):
    """The attempts' zygote (``child.zygote``) bound to one event loop."""

    name = "sandbox fork server"

    def __init__(self, source: str, env: dict[str, str], preload: Preload | None = None) -> None:
        self._preload = preload or Preload()
        spec = marshal.dumps((list(self._preload.paths), list(self._preload.modules))).hex()
        super().__init__([sys.executable, "-I", "-S", "-B", "-c", BOOTSTRAP, "zygote", spec], env, source.encode())
        self._config_dir: str | None = None
        self._loaded: list[str] = []
        self._failed: dict[str, str] = {}
        self._report: asyncio.Future[PreloadReport] | None = None

    async def start(self) -> None:
        """Start the zygote; with modules to preload, its libraries' config and caches (a trusted
        process reads them) go to a private directory of its own, removed by ``close``."""
        self._report = asyncio.get_running_loop().create_future()
        self._report.add_done_callback(_retrieved)
        unsafe = next(filter(None, map(writable_by_others, self._preload.paths)), None)
        if unsafe:  # the zygote is trusted: it runs no code another user could have put there
            self._failed = dict.fromkeys(self._preload.modules, f"not preloaded: {unsafe}")
            log.warning("%s: no preloading: %s", self.name, unsafe)
            self._preload = Preload(self._preload.paths)
            self._argv[-1] = marshal.dumps((list(self._preload.paths), [])).hex()
        if self._preload.modules:
            self._config_dir = tempfile.mkdtemp(prefix="koderz-forkserver-")  # mode 0700
            private = dict.fromkeys(("HOME", "MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"), self._config_dir)
            self._env = {**self._env, **PRELOAD_ENV, **private}
        await super().start()

    async def preload_report(self) -> PreloadReport:
        """What the zygote preloaded, once it has tried every module (``SandboxError`` if it died)."""
        if self._report is None:
            raise SandboxError(f"{self.name} is not running")
        try:
            return await asyncio.wait_for(asyncio.shield(self._report), PRELOAD_SECONDS)
        except TimeoutError as exc:
            raise SandboxError(f"{self.name} still preloading after {PRELOAD_SECONDS:.0f} s") from exc

    def on_message(self, message: Message) -> None:
        """``LOADED <module>`` or ``NOT_LOADED <module> <why>`` for each module, then ``PRELOADED <threads>``."""
        if message.kind is Kind.LOADED:
            self._loaded.append(message.field(0, bytes.decode))
        elif message.kind is Kind.NOT_LOADED:
            name, why = message.field(0, bytes.decode), message.fields[1].decode("utf-8", "replace")
            self._failed[name] = why
            log.warning("%s: %s does not preload (%s); attempts import it themselves", self.name, name, why)
        elif message.kind is Kind.PRELOADED and self._report is not None and not self._report.done():
            threads = message.field(0, int)
            if threads > 1:
                log.warning("%s: %d threads after preloading (a library started threads)", self.name, threads)
            self._report.set_result(PreloadReport(tuple(self._loaded), dict(self._failed), threads))

    def awaited(self) -> list[asyncio.Future[Any]]:
        return [self._report] if self._report is not None else []

    def close(self) -> None:
        super().close()
        if self._config_dir is not None:
            shutil.rmtree(self._config_dir, ignore_errors=True)
            self._config_dir = None

    async def spawn(self, results_fd: int) -> ForkedProcess:
        """Fork one attempt writing its results to ``results_fd`` (the caller keeps and closes
        its copy); its job is written to the returned process's ``stdin``."""
        loop = asyncio.get_running_loop()
        await self.preload_report()  # bounded: a library import that hangs fails the fork server
        job_r, job_w = os.pipe()
        out_r, out_w = os.pipe()
        try:
            pid = await self.fork(Kind.FORK, [job_r, results_fd, out_w])
        except BaseException:
            for fd in (job_w, out_r):
                os.close(fd)
            raise
        finally:
            for fd in (job_r, out_w):
                os.close(fd)
        if pid < 0:
            for fd in (job_w, out_r):
                os.close(fd)
            raise SandboxError(f"{self.name} could not fork")
        exit_code = self.exit_of(pid)
        stderr, t1 = await _read_stream(loop, out_r, 2**16)
        t2, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, os.fdopen(job_w, "wb", 0))
        stdin = asyncio.StreamWriter(t2, protocol, None, loop)
        return ForkedProcess(self, pid, stdin, stderr, exit_code, [t1, t2])


async def _read_stream(loop: asyncio.AbstractEventLoop, fd: int, limit: int) -> tuple[asyncio.StreamReader, Any]:
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(fd, "rb", 0)
    )
    return reader, transport


def writable_by_others(path: str) -> str | None:
    """Why another user could change what ``path`` holds (None: only this uid or root can): the
    directory or one above it belongs to someone else, or is group/other-writable (above it, a
    sticky directory such as /tmp is fine)."""
    current = os.path.realpath(path)
    uid = os.geteuid()
    while True:
        try:
            info = os.stat(current)
        except OSError as exc:
            return f"{current}: {exc.strerror}"
        if info.st_uid not in (0, uid):
            return f"{current} belongs to uid {info.st_uid}"
        sticky_parent = info.st_mode & stat.S_ISVTX and current != os.path.realpath(path)
        if info.st_mode & 0o022 and not sticky_parent:
            return f"{current} is writable by other users"
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _retrieved(future: asyncio.Future[Any]) -> None:
    """A report nobody asked for is no error to log when the zygote dies."""
    if not future.cancelled():
        future.exception()
