"""The command line before Hydra sees it: the role shorthand and Hydra's own flags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from hydra._internal.utils import get_args_parser

from koderz.errors import ConfigError

ROLES = ("spec_model", "checkpoint_model")


def expand_roles(args: Sequence[str]) -> list[str]:
    """``spec_model=X`` / ``checkpoint_model=X`` choose a ``model`` option for that role
    (Hydra spells it ``model@spec_model=X``); any value form works (``glob(...)``, ``a,b``)."""
    out = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key in ROLES:
            arg = f"model@{key}={value}"
        out.append(arg)
    return out


def _refuse(message: str) -> NoReturn:
    raise ConfigError(f"{message} (see --help)")


def check_flags(args: Sequence[str]) -> None:
    """Raise ``ConfigError`` for what Hydra's own parser refuses (``--bogus``, ``--cfg`` without
    a value) instead of letting it print its usage block and exit."""
    parser = get_args_parser()
    parser.error = _refuse  # type: ignore[method-assign]
    parser.parse_args(list(args))
