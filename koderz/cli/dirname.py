"""Sweep job folders named by their overrides, safe as one path component.

Hydra's ``override_dirname`` keeps values verbatim, so ``cortex.url=http://HEAD:8765/mcp``
becomes nested folders. ``hydra.sweep.subdir`` uses this resolver instead: short plain
values stay as they are; other values lose Hydra's escapes and their URL scheme, every run of characters
outside ``[A-Za-z0-9._+@-]`` becomes ``-``, and a value still longer than ``MAX_VALUE``
is cut and given a hash of the original (two long values never share a name).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from omegaconf import OmegaConf

RESOLVER = "koderz.dirname"
MAX_VALUE = 32
MAX_NAME = 160
_UNSAFE = re.compile(r"[^A-Za-z0-9._+@-]+")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _safe(text: str) -> str:
    """``text`` as a readable path-safe token of at most ``MAX_VALUE`` characters."""
    if not text:
        return text
    unescaped = text.replace("\\", "")  # Hydra writes a swept job's http://h:1 as http\://h\:1
    slug = _UNSAFE.sub("-", _SCHEME.sub("", unescaped)).strip("-") or "-"
    if slug == text and len(text) <= MAX_VALUE:
        return text
    if len(slug) > MAX_VALUE:
        slug = f"{slug[: MAX_VALUE - 9]}-{_digest(text)}"
    return slug


def override_dirname(overrides: Iterable[str], exclude_keys: Iterable[str] = ()) -> str:
    """``key=value`` items joined by ``,`` in sorted order, each made safe; keys named in
    ``exclude_keys`` (Hydra's ``hydra.job.config.override_dirname.exclude_keys``) left out."""
    excluded = set(exclude_keys)
    items = []
    for override in overrides:
        key, sep, value = str(override).partition("=")
        if key.lstrip("+~") in excluded:
            continue
        items.append(_UNSAFE.sub("-", key) + (f"={_safe(value)}" if sep else ""))
    name = ",".join(sorted(items))
    if len(name) > MAX_NAME:
        name = f"{name[: MAX_NAME - 9]}-{_digest(name)}"
    return name


def register() -> None:
    """Make ``${koderz.dirname:overrides,exclude_keys}`` available to the config (idempotent)."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, override_dirname)
