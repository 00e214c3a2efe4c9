"""Sweep job folder names (``koderz.cli.dirname``): one safe, readable path component."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from koderz.cli import dirname
from koderz.cli.dirname import MAX_NAME, MAX_VALUE, override_dirname
from koderz.config import register

register()
dirname.register()


def sweep_subdirs(*overrides: str) -> list[str]:
    """The job folders Hydra's basic sweeper would make: its own split into jobs, then
    each job composed with koderz's config and ``hydra.sweep.subdir`` resolved."""
    jobs = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(list(overrides)), None)[0]
    names = []
    with initialize_config_module("koderz.conf", version_base=None):
        for num, job in enumerate(jobs):
            cfg = compose("config", overrides=[*job, f"hydra.job.num={num}"], return_hydra_config=True)
            names.append(cfg.hydra.sweep.subdir)
    return names


def test_the_readme_cluster_example_gets_flat_readable_folders() -> None:
    names = sweep_subdirs("cortex=external", "cortex.url=http://HEAD:8765/mcp", "model=gpt-4o-mini,gpt-4.1-nano")
    assert names == [
        "0_cortex.url=HEAD-8765-mcp,cortex=external,model=gpt-4o-mini",
        "1_cortex.url=HEAD-8765-mcp,cortex=external,model=gpt-4.1-nano",
    ]


def test_hydras_exclude_keys_still_apply() -> None:
    names = sweep_subdirs(
        "model.base_url=http://127.0.0.1:18300/v1",
        "mode=zero_shot,iterative",
        "hydra.job.config.override_dirname.exclude_keys=[model.base_url]",
    )
    assert names == ["0_mode=zero_shot", "1_mode=iterative"]


@pytest.mark.parametrize(
    ("override", "name"),
    [
        ("model=gpt-4o-mini", "model=gpt-4o-mini"),
        ("temperature=0.5", "temperature=0.5"),
        ("model.base_url=http\\://127.0.0.1\\:18300/v1", "model.base_url=127.0.0.1-18300-v1"),  # as Hydra escapes it
        ("model.samples=/home/me/data/samples.jsonl", "model.samples=home-me-data-samples.jsonl"),
        ("problems=[HumanEval/0,HumanEval/5]", "problems=HumanEval-0-HumanEval-5"),
        ("model@spec_model=gpt-4o", "model@spec_model=gpt-4o"),
        ("~seed", "-seed"),
        ("seed=", "seed="),
    ],
)
def test_values_become_safe_and_stay_readable(override: str, name: str) -> None:
    assert override_dirname([override]) == name


def test_long_values_are_cut_and_keep_a_hash_of_the_whole_value() -> None:
    a = override_dirname(["model.samples=/data/" + "x" * 80 + "/a.jsonl"])
    b = override_dirname(["model.samples=/data/" + "x" * 80 + "/b.jsonl"])
    assert a != b
    assert len(a.partition("=")[2]) == len(b.partition("=")[2]) == MAX_VALUE


def test_many_overrides_stay_under_the_name_limit_and_distinct() -> None:
    many = [f"key{i}=value{i}" for i in range(40)]
    first, second = override_dirname(many), override_dirname([*many[:-1], "key39=other"])
    assert len(first) <= MAX_NAME and len(second) <= MAX_NAME and first != second


@pytest.mark.parametrize("value", ["..", "/", "a/../../b", "x\\y", "C:\\temp", "\x00\n\t", "é/ü", "*?<>|\"'", " "])
def test_no_value_can_make_a_path_separator_or_a_parent_reference(value: str) -> None:
    name = override_dirname([f"k={value}"])
    assert "/" not in name and "\\" not in name and "\x00" not in name and "\n" not in name
    assert name not in (".", "..") and all(c.isascii() and c.isprintable() for c in name)
