"""Folders and files koderz trusts: where they are, and opened only where no other user can change them.

A trusted folder (the ground-truth cache, the result cache, ...) is reached one component at a
time from ``/`` with ``openat`` on directory descriptors, never through a path that could be
swapped underneath: every folder on the way must be owned by root or the user and not writable
by group or others (a sticky folder such as ``/tmp`` is allowed on the way, since others cannot
replace what the user owns in it; so is a group that is the user's own private group), and the
folder itself must be owned by the user. A symbolic link on the way is followed only when it is
owned by root or the user and sits in a folder that passed; a file in a trusted folder is opened
with ``O_NOFOLLOW`` and must be the user's regular file, not writable by group or others. Files
are written to a fresh name (``O_EXCL``, mode ``0600``) and renamed into place inside the same
checked folder; folders koderz creates are ``0700``. An unsafe location is refused with an
``UnsafeFile`` (a ``ConfigError``) naming it: one line and exit 2 at the command line.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import stat
from collections import deque
from pathlib import Path
from typing import BinaryIO

from koderz.errors import ConfigError

MAX_LINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def cache_dir() -> Path:
    """Where koderz keeps caches: ``$KODERZ_CACHE_DIR`` or ``$XDG_CACHE_HOME/koderz`` (``~/.cache/koderz``)."""
    explicit = os.environ.get("KODERZ_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "koderz"


class UnsafeFile(ConfigError):
    """A folder or file another user could have written, or one that is not what it should be."""


def open_cache() -> TrustedDir:
    """The cache folder (``cache_dir``), checked; created ``0700`` when missing."""
    source = next((v for v in ("KODERZ_CACHE_DIR", "XDG_CACHE_HOME") if os.environ.get(v)), "")
    return TrustedDir.open(cache_dir(), what=f"the cache folder{f' (from {source})' if source else ''}")


def read_range(path: Path, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` of the user's file ``path``, in a folder reached safely."""
    with TrustedDir.open(path.parent, create=False, what="the folder of") as folder:
        handle = folder.open_file(path.name)
        if handle is None:
            raise UnsafeFile(f"{path}: missing")
        with handle:
            handle.seek(offset)
            return handle.read(size)


def _owner_ok(st: os.stat_result, *, own: bool) -> bool:
    return st.st_uid == os.geteuid() or (not own and st.st_uid == 0)


def _private_group(gid: int) -> bool:
    """The user's own group (same name as the user, nobody else in it, nobody else's primary
    group): umask 002 systems make folders group-writable for it, which lets no other user in."""
    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(gid)
    except KeyError:
        return False
    if gid != os.getegid() or group.gr_name != user or not set(group.gr_mem) <= {user}:
        return False
    return not any(entry.pw_gid == gid and entry.pw_name != user for entry in pwd.getpwall())


def _writable_by_others(st: os.stat_result) -> bool:
    return bool(st.st_mode & 0o002 or (st.st_mode & 0o020 and not _private_group(st.st_gid)))


def _check_dir(st: os.stat_result, where: str, *, own: bool) -> None:
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeFile(f"{where} is not a folder")
    if not _owner_ok(st, own=own):
        owner = "you" if own else "root or you"
        raise UnsafeFile(f"{where} is owned by uid {st.st_uid}, not by {owner} (uid {os.geteuid()})")
    sticky_on_the_way = not own and st.st_mode & stat.S_ISVTX
    if _writable_by_others(st) and not sticky_on_the_way:
        raise UnsafeFile(f"{where} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o})")


def _check_file(st: os.stat_result, where: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFile(f"{where} is not a regular file")
    if st.st_uid != os.geteuid():
        raise UnsafeFile(f"{where} is owned by uid {st.st_uid}, not by you (uid {os.geteuid()})")
    if _writable_by_others(st):
        raise UnsafeFile(f"{where} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o})")


class TrustedDir:
    """An open, checked folder; files in it are read and written through its descriptor."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    @classmethod
    def open(cls, path: Path | str, *, create: bool = True, what: str = "folder") -> TrustedDir:
        """The folder at ``path`` (created ``0700`` with its missing parents when ``create``);
        ``UnsafeFile`` naming ``what`` and the path when it or the way to it is not safe."""
        target = Path(os.path.abspath(path))
        try:
            return cls(_walk(target, create), target)
        except UnsafeFile as exc:
            reason = str(exc).removeprefix(f"{target} ")
            raise UnsafeFile(
                f"{what} {target}: {'it ' if reason != str(exc) else ''}{reason}; "
                "koderz keeps trusted files only where no other user can change them"
            ) from None
        except OSError as exc:
            raise UnsafeFile(f"{what} {target}: cannot be opened safely: {exc.strerror}") from None

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> TrustedDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subdir(self, name: str, *, create: bool = True) -> TrustedDir:
        """A folder directly in this one, checked like it (never a symbolic link)."""
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=self.fd)
        fd = os.open(name, _DIR_FLAGS, dir_fd=self.fd)
        try:
            _check_dir(os.fstat(fd), str(self.path / name), own=True)
        except BaseException:
            os.close(fd)
            raise
        return TrustedDir(fd, self.path / name)

    def open_file(self, name: str) -> BinaryIO | None:
        """The user's regular file ``name`` opened for reading; None when there is none.
        ``UnsafeFile`` when it is a symbolic link, not a regular file, or not safely the user's."""
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:  # ELOOP: a symbolic link
            raise UnsafeFile(f"{self.path / name}: cannot be opened safely ({exc.strerror})") from None
        try:
            _check_file(os.fstat(fd), str(self.path / name))
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return os.fdopen(fd, "rb")

    def read_bytes(self, name: str) -> bytes | None:
        handle = self.open_file(name)
        if handle is None:
            return None
        with handle:
            return handle.read()

    def check_file(self, name: str) -> None:
        """``UnsafeFile`` unless ``name`` is absent or the user's safe regular file."""
        handle = self.open_file(name)
        if handle is not None:
            handle.close()

    def write_bytes(self, name: str, data: bytes) -> None:
        """Replace ``name`` atomically: written to a fresh ``0600`` file (``O_EXCL``), renamed over it."""
        partial = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(partial, flags, 0o600, dir_fd=self.fd)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(partial, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(partial, dir_fd=self.fd)
            raise


def _walk(target: Path, create: bool) -> int:
    """A descriptor of ``target``, reached from ``/`` one checked component at a time."""
    fd = os.open("/", _DIR_FLAGS)
    try:
        _check_dir(os.fstat(fd), "/", own=False)
        parts = deque(target.parts[1:])
        where = Path("/")
        links = 0
        while parts:
            name = parts.popleft()
            last = not parts
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o700, dir_fd=fd)
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_LINKS or not _owner_ok(st, own=False):
                    raise UnsafeFile(f"{where / name} is a symbolic link owned by uid {st.st_uid}")
                link = os.readlink(name, dir_fd=fd)
                parts.extendleft(reversed(Path(link).parts))
                if link.startswith("/"):
                    parts.popleft()  # the leading "/": start again from the root
                    os.close(fd)
                    fd = os.open("/", _DIR_FLAGS)
                    where = Path("/")
                continue
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
            where = Path(os.path.normpath(where / name))
            _check_dir(os.fstat(fd), str(where), own=last)
        return fd
    except BaseException:
        os.close(fd)
        raise
