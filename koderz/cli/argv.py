"""The command line before Hydra sees it: the role shorthand and Hydra's own flags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from hydra._internal.utils import get_args_parser

from koderz.errors import ConfigError

ROLES = ("spec_model", "checkpoint_model", "baseline_model")


def expand_roles(args: Sequence[str]) -> list[str]:
    """``spec_model=X`` / ``checkpoint_model=X`` / ``baseline_model=X`` choose a ``model`` option for
    that role (Hydra spells it ``model@spec_model=X``); any value form works (``glob(...)``, ``a,b``).
    ``resume=FOLDER`` runs in that folder: its log is appended to, its ``.hydra`` kept as it was."""
    refuse_run_dir_with_resume(args)
    out = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key in ROLES:
            arg = f"model@{key}={value}"
        out.append(arg)
        if sep and key == "resume" and value:
            out += [f"hydra.run.dir={value}", "hydra.output_subdir=null"]
    return out


def refuse_run_dir_with_resume(args: Sequence[str]) -> None:
    """A resumed run continues in its own folder: ``hydra.run.dir``/``hydra.sweep.dir`` beside
    ``resume=`` would start a second one (with the first left ``running``); refused."""
    keys = {arg.partition("=")[0].lstrip("+~"): arg for arg in args if "=" in arg}
    resume = next((arg for key, arg in keys.items() if key == "resume" and arg.partition("=")[2]), None)
    for key in ("hydra.run.dir", "hydra.sweep.dir"):
        if resume and key in keys:
            raise ConfigError(f"{keys[key]}: a resumed run continues in its own folder ({resume}); drop {key}")


def _refuse(message: str) -> NoReturn:
    stray = message.removeprefix("unrecognized arguments: ").split()
    if message.startswith("unrecognized arguments: ") and all("=" in arg and arg[0] != "-" for arg in stray):
        # argparse takes the overrides in one run: `end=2 -m mode=a,b` leaves `mode=a,b` over
        raise ConfigError(f"{' '.join(stray)}: overrides go after the flags (-m, --cfg, ...), e.g. koderz -m a=1 b=2")
    raise ConfigError(f"{message} (see --help)")


def check_flags(args: Sequence[str]) -> None:
    """Raise ``ConfigError`` for what Hydra's own parser refuses (``--bogus``, ``--cfg`` without
    a value) instead of letting it print its usage block and exit."""
    parser = get_args_parser()
    parser.error = _refuse  # type: ignore[method-assign]
    parser.parse_args(list(args))
