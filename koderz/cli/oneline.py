"""Any error Hydra, OmegaConf or koderz raises for bad input, as one line naming the key.

Hydra's messages are several lines (the search path, the options one per line, a hint
about ``HYDRA_FULL_ERROR``); this keeps what matters: the override as the user typed it,
what is wrong, and what would be right (the group's options, a close key name, the
``pip install`` that brings a missing plugin).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from hydra.errors import MissingConfigException, OverrideParseException
from omegaconf import DictConfig
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from koderz.cli.argv import ROLES
from koderz.errors import KoderzError

MAX_LINE = 1000
GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"

# a missing config of a Hydra plugin group -> the koderz extra that installs the plugin
EXTRAS = {
    "hydra/launcher/joblib": "joblib",
    "hydra/launcher/submitit_slurm": "slurm",
    "hydra/launcher/submitit_local": "slurm",
    "hydra/launcher/ray": "ray",
    "hydra/launcher/ray_aws": "ray",
    "hydra/sweeper/optuna": "optuna",
    "hydra/sweeper/sampler": "optuna",
}

_TYPES = [
    (re.compile(r"could not be converted to Integer"), "expected an integer"),
    (re.compile(r"could not be converted to Float"), "expected a number"),
    (re.compile(r"is not a valid bool"), "expected true or false"),
    (re.compile(r"is not a ListConfig"), "expected a list"),
    (re.compile(r"is not a DictConfig|is not a subclass of"), "expected a mapping"),
]

_GROUP_ROLES = dict.fromkeys(ROLES, "model")  # spec_model=x picks a model option


def describe(exc: BaseException, args: Sequence[str]) -> str:
    """One line for ``exc``; ``args`` are the overrides as typed (to name the culprit)."""
    return _flat(_describe(exc, args))


def _describe(exc: BaseException, args: Sequence[str]) -> str:
    if isinstance(exc, KoderzError):
        return str(exc)
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file:
        return _missing_option(exc.missing_cfg_file, exc.options, args)
    if isinstance(exc, OverrideParseException):
        return f"{exc.override}: not valid override syntax ({_first(exc.message)}); see {GRAMMAR}"
    cause = _omegaconf_cause(exc)
    if cause is not None:
        return _omegaconf(cause, args)
    if isinstance(exc, OSError) and exc.filename:
        return _unwritable(exc, args)
    return _hydra(_flat(str(exc)) or type(exc).__name__, args)


def _missing_option(missing: str, options: Sequence[str] | None, args: Sequence[str]) -> str:
    group, _, option = missing.rpartition("/")
    typed = _typed(args, group, option)
    extra = EXTRAS.get(missing) or EXTRAS.get(group)
    if extra:
        return f"{typed}: needs the plugin {group}={option}, which is not installed: pip install 'koderz[{extra}]'"
    known = f" (choose from {', '.join(options)})" if options else ""
    return f"{typed}: no option {option!r} in config group {group}{known}"


def _typed(args: Sequence[str], group: str, option: str) -> str:
    """The override that asked for ``group/option`` as the user wrote it (``spec_model=x``)."""
    for arg in args:
        key, _, value = arg.partition("=")
        name = key.lstrip("+~").split("@")[0]
        if _GROUP_ROLES.get(name, name) == group and option in re.split(r"[\s,()\[\]=]+", value):
            return arg
    for arg in args:  # a preset that pulls in the missing option (hparams_search=optuna)
        if arg.partition("=")[2] == option:
            return arg
    return f"{group}={option}"


def _omegaconf_cause(exc: BaseException) -> OmegaConfBaseException | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OmegaConfBaseException) and getattr(seen, "full_key", None):
            return seen
        seen = seen.__cause__
    return None


def _omegaconf(cause: OmegaConfBaseException, args: Sequence[str]) -> str:
    key = str(cause.full_key)
    first = _first(str(cause))
    if isinstance(cause, ConfigKeyError) or first.startswith("Key '"):  # ConfigAttributeError too
        parent = cause.parent_node
        names = [str(k) for k in parent] if isinstance(parent, DictConfig) else []
        parent_path = key.rpartition(".")[0] + "." if "." in key else ""
        close = [parent_path + name for name in difflib.get_close_matches(str(cause.key), names, n=2)]
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        return f"{_arg_for(args, key)}: koderz has no such key{hint}"
    if isinstance(cause, ValidationError):
        why = next((text for pattern, text in _TYPES if pattern.search(first)), first)
        example = f", e.g. {key}=[{cause.value}]" if why == "expected a list" else ""
        return f"{key}={cause.value}: {why}{example}"
    return f"{_arg_for(args, key)}: {first}"


def _hydra(message: str, args: Sequence[str]) -> str:
    """Hydra's own messages, recognised by their wording (Hydra is pinned to 1.3)."""
    quoted = re.search(r"'([^']+=[^']*)'", message)
    culprit = quoted.group(1) if quoted else None
    if message.startswith("Ambiguous value for argument") and culprit:
        return f"{culprit}: several values need -m (a sweep); a list is key=[a,b], a string key='a,b'"
    if "requires --multirun" in message and culprit:
        return f"{culprit}: a sweep expression needs -m (--multirun)"
    if "does not support sweep type : INTERVAL_SWEEP" in message:
        interval = next((a for a in args if "interval(" in a), "interval(...)")
        return f"{interval}: interval() needs a sampling sweeper (hparams_search=optuna, pip install 'koderz[optuna]')"
    if message.startswith("Config group override must be a string"):
        number = next((a for a in args if re.fullmatch(r"[\w/@]+=(range\(.*\)|[-\d.,]+)", a)), "a group override")
        return f"{number}: a config group takes option names, not numbers"
    if message.startswith("provider=hydra.searchpath"):
        path = re.search(r"path=(.*) is not available", message)
        return f"hydra.searchpath: {path.group(1) if path else message} is not available (no such directory or package)"
    folder = re.match(r"Additional config directory '(.*)' not found", message)
    if folder:
        return f"--config-dir {folder.group(1)}: no such directory"
    named = next((a for a in args if f"'{a.partition('=')[0].lstrip('+~')}'" in message), None)
    return f"{named}: {message}" if named else message


def _unwritable(exc: OSError, args: Sequence[str]) -> str:
    """A file koderz could not make or open, with the key that places it (the run or sweep folder)."""
    key = "hydra.sweep.dir" if {"-m", "--multirun"} & set(args) else "hydra.run.dir"
    typed = next((a for a in args if a.partition("=")[0] == key), None)
    where = typed or f"{key} (outputs/ under the current folder)"
    return f"{where}: cannot write {exc.filename}: {exc.strerror}; run from a writable folder or set {key}=DIR"


def _arg_for(args: Sequence[str], key: str) -> str:
    """The override for ``key`` (or a key below it) as typed (``foo.bar=1``), or the key alone."""
    for arg in args:
        typed = arg.partition("=")[0].lstrip("+~")
        if typed == key or typed.startswith(key + "."):
            return arg
    return key


def _first(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _flat(text: str) -> str:
    """Several lines as one, control characters dropped, at most ``MAX_LINE`` characters
    (a message may quote what a server sent)."""
    line = "; ".join(part.strip() for part in text.strip().splitlines() if part.strip())
    line = "".join(c if c.isprintable() else " " for c in line)
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."
