"""Helper roles follow the coder by default (``coder``), a role given a model keeps it, and every
role's model is named in the summary; the ``evalplus`` protocol only in the runs it fits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from koderz.config import CODER_ROLE, RunConfig
from koderz.errors import ConfigError
from koderz.records import Roles, RunFolder
from tests.conftest import compose_config, plan, run_job


def test_a_real_coder_writes_its_own_spec_and_reviews_by_default() -> None:
    run = plan("model=gpt-4o-mini", "mode=iterative")
    assert run.roles == Roles(
        coder="gpt-4o-mini", spec="gpt-4o-mini", reviewer="gpt-4o-mini", baseline="claude-sonnet-4-5"
    )
    assert run.spec_writer == run.coder and run.reviewer == run.coder


def test_following_the_coder_carries_its_overrides() -> None:
    """A server of one's own (model.base_url, model.name) serves every role that follows the coder."""
    run = plan("model=openai_compatible", "model.base_url=http://127.0.0.1:9/v1", "model.name=M", "mode=iterative")
    assert {run.spec_writer.base_url, run.reviewer.base_url} == {"http://127.0.0.1:9/v1"}  # type: ignore[union-attr]
    assert run.roles.spec == run.roles.reviewer == "M"


def test_a_role_given_a_model_keeps_it() -> None:
    run = plan(
        "model=gpt-4o-mini", "model@spec_model=reference", "model@checkpoint_model=claude-sonnet-4-5", "mode=iterative"
    )
    assert (run.roles.spec, run.roles.reviewer) == ("reference", "claude-sonnet-4-5")


def test_a_setting_given_to_a_following_role_applies_on_top_of_the_coder() -> None:
    run = plan("model=gpt-4o-mini", "model.base_url=http://127.0.0.1:9/v1", "spec_model.temperature=0.7")
    assert run.spec_writer is not None and run.coder.temperature == 0.0
    assert (run.spec_writer.name, run.spec_writer.base_url, run.spec_writer.temperature) == (
        "gpt-4o-mini", "http://127.0.0.1:9/v1", 0.7)  # fmt: skip


def test_coder_yaml_is_the_placeholder_the_plan_resolves() -> None:
    config = OmegaConf.to_object(compose_config())
    assert (
        isinstance(config, RunConfig) and config.spec_model == CODER_ROLE
    )  # nothing in the file is taken for a setting


def test_the_run_level_temperature_reaches_a_following_role() -> None:
    run = plan("model=gpt-4o-mini", "temperature=0.3")
    assert run.spec_writer is not None and run.spec_writer.temperature == 0.3


def test_the_speed_test_times_the_models_the_roles_resolve_to() -> None:
    spec, review = plan("model=gpt-4o-mini", "model@checkpoint_model=gpt-4.1").helper_models
    assert (spec.name, review.name) == ("gpt-4o-mini", "gpt-4.1")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("model=coder",), "model=coder: stands for the coder's model in a helper role"),
        (("prompt.protocol=evalplus",), "spec.enabled=True: prompt.protocol=evalplus needs false"),
        (
            ("experiment=evalplus", "mode=comparative"),
            "mode=comparative: prompt.protocol=evalplus needs mode=zero_shot",
        ),
        (("experiment=evalplus", "prompt.cot=true"), "prompt.cot=True: prompt.protocol=evalplus needs false"),
        (("prompt.protocol=leaderboard",), "prompt.protocol=leaderboard: choose one of koderz, evalplus"),
    ],
)
def test_roles_and_protocols_that_cannot_work_are_refused_naming_the_value(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        plan(*overrides)


def test_the_evalplus_preset_is_evalplus_leaderboard_protocol() -> None:
    cfg = compose_config("experiment=evalplus", "model=gpt-4o-mini")
    run = plan("experiment=evalplus", "model=gpt-4o-mini")
    assert (cfg.dataset.name, cfg.mode.name, cfg.n_samples, cfg.temperature) == ("humaneval_plus", "zero_shot", 1, 0.0)
    assert run.coder.temperature == 0.0 and run.coder.max_tokens == 768  # EvalPlus's greedy default
    assert run.spec_writer is None and run.reviewer is None and run.prompt_label == "evalplus"
    assert plan("experiment=evalplus", "dataset=mbpp_plus").dataset == "mbpp_plus"  # the command line wins


def test_the_command_line_refuses_a_bare_evalplus_protocol_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "koderz", "prompt.protocol=evalplus", "tracking=off", "cortex=off"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "experiment=evalplus sets it all" in done.stderr
    assert not (tmp_path / "outputs" / "runs").exists() or not any((tmp_path / "outputs" / "runs").rglob("config.yaml"))


async def test_the_summary_and_config_name_every_role(tmp_path: Path) -> None:
    """The default run: the reference coder writes its own spec; config.yaml keeps ``coder`` (a
    resume follows the coder's endpoint overrides), the summary the model each role resolved to."""
    outcome = await run_job(tmp_path / "run", "end=2", "tracking=off", "cortex=off", "mode=iterative")
    summary = RunFolder(outcome.folder).read_results().summary
    assert summary.roles == Roles(
        coder="reference", spec="reference", reviewer="reference", baseline="claude-sonnet-4-5"
    )
    config = RunFolder(outcome.folder).read_config()
    assert config["spec_model"]["provider"] == config["checkpoint_model"]["provider"] == "coder"
