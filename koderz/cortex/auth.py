"""The shared server's bearer token and the Host names it answers (docs/cortex.md).

The token file is made exclusively, mode 0600, never through a symlink; one that is not a regular
file of this user, or that others may read or write, is refused in one line. ``Host`` must be a
loopback name or one the operator allows (no DNS rebinding).
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

from mcp.server.auth.provider import AccessToken
from mcp.server.transport_security import TransportSecuritySettings

from koderz.errors import ConfigError

TOKEN_ENV = "KODERZ_CORTEX_TOKEN"
TOKEN_FILE_ENV = "KODERZ_CORTEX_TOKEN_FILE"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def default_token_file() -> Path:
    """``$XDG_CONFIG_HOME/koderz/cortex.token`` (``~/.config/...``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "koderz" / "cortex.token"


def _read_checked(path: Path) -> str:
    """The token in ``path``, if it is a regular file of this user that nobody else may read or write."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"cortex token file {str(path)!r} cannot be read: {exc.strerror}") from None
    with os.fdopen(fd) as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            raise ConfigError(f"cortex token file {str(path)!r} is not a regular file owned by uid {os.geteuid()}")
        if info.st_mode & 0o077:
            raise ConfigError(
                f"cortex token file {str(path)!r} has mode {stat.S_IMODE(info.st_mode):o}; it must be 600"
            )
        token = handle.read(200).strip()
    if len(token) < 32:
        raise ConfigError(f"cortex token file {str(path)!r} holds no token (at least 32 characters)")
    return token


def server_token(path: Path) -> str:
    """The token in ``path``; made there first if the file does not exist (exclusive create, 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return _read_checked(path)
    except OSError as exc:
        raise ConfigError(f"cortex token file {str(path)!r} cannot be created: {exc.strerror}") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token


def token_for_client(token_file: str | None) -> str | None:
    """The token a client sends: ``token_file``, else the environment, else the default file if present."""
    if token_file:
        return _read_checked(Path(token_file).expanduser())
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip()
    if os.environ.get(TOKEN_FILE_ENV):
        return _read_checked(Path(os.environ[TOKEN_FILE_ENV]).expanduser())
    default = default_token_file()
    return _read_checked(default) if default.exists() else None


class StaticTokenVerifier:
    """The MCP SDK's ``TokenVerifier`` for one shared secret (compared in constant time)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token.encode()):
            return AccessToken(token=token, client_id="cortex-client", scopes=[])
        return None


def host_security(allowed: list[str]) -> TransportSecuritySettings:
    """Answer only requests whose ``Host`` is a loopback name or one of ``allowed`` (any port)."""
    names = [*LOOPBACK_HOSTS, *allowed]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[h for name in names for h in (name, f"{name}:*")],
        allowed_origins=[o for name in names for o in (f"http://{name}", f"http://{name}:*")],
    )
