"""The commands the README and docs quote work as written.

Every quoted transcript (``$ python -m koderz ...`` with its output) is run and must print what
the doc shows (``...`` stands for the rest of a long line). Every ``python -m koderz`` line of a
bash block is composed and checked exactly as that command would be (the config, every job of a
sweep; not the keys, servers or extras it needs); the cheap ones (the built-in reference model)
run in full.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import open_dict

from koderz.cli import checks
from koderz.cli.argv import expand_roles
from tests.support.docs import Quoted, koderz_commands, transcripts

TRANSCRIPTS = list(transcripts())
COMMANDS = list(koderz_commands())
EXTRAS = (
    "hydra/launcher=",
    "hydra.launcher.",
    "hparams_search=",
)  # plugins from extras the default suite does not install
CHEAP = [c for c in COMMANDS if "model=reference" in c.args and "-m" not in c.args[3:]]


def run(command: Quoted, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_FULL_ERROR", "MLFLOW_"))}
    return subprocess.run(
        [sys.executable, *command.args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_docs_quote_commands_at_all() -> None:
    assert len(TRANSCRIPTS) >= 3 and len(COMMANDS) >= 10 and CHEAP


@pytest.mark.parametrize("quoted", TRANSCRIPTS, ids=[f"{q.doc}: {q.command}" for q in TRANSCRIPTS])
def test_a_quoted_transcript_prints_what_the_doc_shows(quoted: Quoted, tmp_path: Path) -> None:
    done = run(quoted, tmp_path)

    printed = (done.stdout + done.stderr).splitlines()
    assert len(printed) >= len(quoted.output), printed
    for shown, got in zip(quoted.output, printed, strict=False):
        head = shown.split("...", 1)[0]
        assert got.startswith(head) if "..." in shown else got == shown, (shown, got)


@pytest.mark.parametrize("quoted", COMMANDS, ids=[f"{q.doc}: {q.command}" for q in COMMANDS])
def test_a_quoted_command_composes_and_passes_the_checks(quoted: Quoted, monkeypatch: pytest.MonkeyPatch) -> None:
    """As ``python -m koderz`` checks a job before it runs (a sweep: each of its jobs), with keys set
    (the doc's reader has theirs) and plugins from extras left out."""
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.setenv(key, "sk-doc")
    args = [a for a in expand_roles(quoted.args[3:]) if not a.startswith(EXTRAS)]
    jobs = [args]
    if "-m" in args:
        parsed = OverridesParser.create().parse_overrides([a for a in args if a != "-m"])
        jobs = BasicSweeper.split_arguments(parsed, None)[0]
    with initialize_config_module("koderz.conf", version_base=None):
        for job in jobs:
            cfg = compose("config", overrides=job, return_hydra_config=True)
            choices = cfg.hydra.runtime.choices
            with open_dict(cfg):
                del cfg["hydra"]
            checks.check_job(cfg, choices)


@pytest.mark.parametrize("quoted", CHEAP, ids=[f"{q.doc}: {q.command}" for q in CHEAP])
def test_a_cheap_quoted_command_runs_as_written(quoted: Quoted, tmp_path: Path) -> None:
    done = run(quoted, tmp_path)

    assert done.returncode == 0, done.stderr[-2000:]
