"""Every config group option composes through Hydra and type-checks against the schema."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from koderz.config import RunConfig, validate
from koderz.errors import ConfigError
from koderz.models.config import PROVIDERS, TIERS
from koderz.plan import Plan
from koderz.records import RunFolder
from tests.conftest import CONF, compose_config


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("name", [m for m in options("model") if m != "coder"])  # coder: a helper role's choice
def test_every_model_file_composes_in_every_role(name: str) -> None:
    overrides = [f"model={name}", f"model@spec_model={name}", f"model@checkpoint_model={name}"]
    if name == "openai_compatible":
        overrides.append("model.base_url=http://127.0.0.1:1/v1")
    cfg = compose_config(*overrides)
    for role in ("model", "spec_model", "checkpoint_model"):
        assert cfg[role].provider in PROVIDERS
        assert cfg[role].tier in TIERS
        assert cfg[role].price_input >= 0 and cfg[role].price_output >= 0


@pytest.mark.parametrize("group", ["dataset", "mode", "cortex", "tracking", "experiment"])
def test_every_group_option_composes(group: str) -> None:
    for name in options(group):
        cfg = compose_config(f"{group}={name}")
        assert OmegaConf.get_type(cfg) is RunConfig
        validate(cfg)


def test_defaults_are_the_embedded_self_check() -> None:
    cfg = compose_config()
    assert (cfg.model.name, cfg.dataset.name, cfg.mode.name) == ("reference", "humaneval", "zero_shot")
    assert (cfg.concurrency, cfg.max_iterations, cfg.checkpoint_interval, cfg.n_samples) == (1, 50, 5, 1)
    assert cfg.cortex.mode == "local" and cfg.spec.reuse is True


def test_experiment_presets_change_only_what_they_name() -> None:
    assert compose_config("experiment=no_spec").spec.enabled is False
    assert compose_config("experiment=no_cot").prompt.cot is False
    no_checkpoints = compose_config("experiment=no_checkpoints")
    assert no_checkpoints.checkpoints.enabled is False and no_checkpoints.mode.name == "iterative"


def test_structured_config_rejects_a_wrong_type() -> None:
    with pytest.raises((ConfigCompositionException, ValidationError)):
        compose_config("concurrency=lots")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("concurrency=0", "concurrency=0"),
        ("max_iterations=-1", "max_iterations=-1"),
        ("checkpoint_interval=0", "checkpoint_interval=0"),
        ("n_samples=0", "n_samples=0"),
        ("end=0", "end=0"),
        ("test_timeout=0", "test_timeout=0"),
    ],
)
def test_validate_names_the_bad_key_and_value(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(compose_config(override))


@pytest.mark.parametrize("mode", ["iterative", "comparative"])
def test_a_review_that_can_never_happen_is_refused(mode: str) -> None:
    with pytest.raises(ConfigError, match=r"^checkpoint_interval=5: a review comes after every 5 failed attempts"):
        validate(compose_config(f"mode={mode}", "max_iterations=5"))
    validate(compose_config(f"mode={mode}", "max_iterations=6"))  # a review after the 5th failure
    validate(compose_config(f"mode={mode}", "max_iterations=2", "checkpoints.enabled=false"))
    validate(compose_config("mode=zero_shot", "max_iterations=2"))  # no feedback, no reviews


def test_a_saved_config_is_read_back_as_the_plan_it_was_written_from(tmp_path) -> None:
    plan = Plan.build(compose_config("mode=iterative", "max_iterations=6"))
    folder = RunFolder(tmp_path)
    folder.write_config(plan.to_dict())
    assert Plan.read(folder) == plan


@pytest.mark.parametrize("saved", [{"no_such_key": 1}, {"concurrency": 0}, {"mode": {"name": "nope"}}])
def test_a_saved_config_that_does_not_fit_is_one_config_error_naming_the_folder(tmp_path, saved) -> None:
    folder = RunFolder(tmp_path)
    folder.write_config(saved)
    with pytest.raises(ConfigError, match=str(tmp_path)):
        Plan.read(folder)
