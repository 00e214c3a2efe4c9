"""``koderz.cli.oneline``: any error as one bounded line (the CLI matrix in tests/test_cli.py
runs the real command line; these cover what it cannot provoke)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import MissingConfigException

from koderz.cli.argv import expand_roles
from koderz.cli.oneline import MAX_LINE, describe
from koderz.errors import ExitCode, ModelError


def test_a_message_quoting_a_server_is_one_printable_bounded_line() -> None:
    hostile = "model x: server said: " + "\x1b[31mred\x1b[0m\r\nforged line\n" * 5000
    line = describe(ModelError(hostile), [])
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert len(line) <= MAX_LINE and line.endswith("...")


def test_an_optuna_sampler_names_the_optuna_extra() -> None:
    missing = MissingConfigException("...", missing_cfg_file="hydra/sweeper/sampler/tpe", options=[])
    assert describe(missing, []) == (
        "hydra/sweeper/sampler=tpe: needs the plugin hydra/sweeper/sampler=tpe, which is not installed: "
        "pip install 'koderz[optuna]'"
    )


def test_a_role_override_is_named_as_typed() -> None:
    missing = MissingConfigException("...", missing_cfg_file="model/nope", options=["a", "b"])
    assert describe(missing, ["end=2", "checkpoint_model=nope"]) == (
        "checkpoint_model=nope: no option 'nope' in config group model (choose from a, b)"
    )


def test_the_role_shorthand_keeps_every_value_form() -> None:
    assert expand_roles(["spec_model=glob(gpt*)", "checkpoint_model=a,b", "spec_model.name=x", "model=c"]) == [
        "model@spec_model=glob(gpt*)",
        "model@checkpoint_model=a,b",
        "spec_model.name=x",
        "model=c",
    ]


def test_an_unwritable_run_folder_names_the_key_that_places_it() -> None:
    error = NotADirectoryError(20, "Not a directory", "outputs/runs/2026-12-07/10-00-00")

    assert describe(error, ["end=2"]) == (
        "hydra.run.dir (outputs/ under the current folder): cannot write outputs/runs/2026-12-07/10-00-00: "
        "Not a directory; run from a writable folder or set hydra.run.dir=DIR"
    )
    assert describe(error, ["-m", "hydra.sweep.dir=/ro/x", "end=2"]).startswith("hydra.sweep.dir=/ro/x: cannot write")


@pytest.mark.parametrize(
    "module", ["koderz.cortex", "koderz.export", "koderz.merge", "koderz.compare", "koderz.tracking"]
)
def test_each_helper_command_reports_bad_arguments_in_one_line(tmp_path: Path, module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, "--no-such-option"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == ExitCode.BAD_INPUT, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"python -m {module}: error: "), line
    assert not list(tmp_path.iterdir())  # nothing left behind
