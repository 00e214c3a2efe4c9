"""The sweep check lists a sweep's jobs with Hydra's own expansion and checks each."""

from __future__ import annotations

import pytest

from koderz.cli.sweep_check import check_sweep
from koderz.errors import ConfigError


def test_every_job_of_a_basic_sweep_is_checked() -> None:
    assert check_sweep(["-m", "mode=zero_shot,iterative", "end=1,2"]) == 4


def test_a_single_run_and_a_sampling_sweeper_are_not_expanded_here() -> None:
    assert check_sweep(["end=2"]) == 0
    assert check_sweep(["-m", "hparams_search=optuna"]) == 0


def test_the_first_bad_job_is_raised() -> None:
    with pytest.raises(ConfigError, match="end=500"):
        check_sweep(["-m", "end=2,500"])
