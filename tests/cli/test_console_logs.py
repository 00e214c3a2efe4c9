"""The console log filter (``koderz.cli.logs``) and the job logging config that uses it."""

from __future__ import annotations

import logging

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from koderz.cli.logs import LibraryFilter
from koderz.config import register

register()


def record(name: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, "message", None, None)


def test_koderz_records_and_any_warning_pass_library_info_does_not() -> None:
    quiet = LibraryFilter()
    assert quiet.filter(record("koderz.runner")) and quiet.filter(record("koderz"))
    assert quiet.filter(record("__main__"))
    assert not quiet.filter(record("httpx2")) and not quiet.filter(record("openai._base_client"))
    assert not quiet.filter(record("koderzfoo"))  # a prefix of a name is not the logger
    assert quiet.filter(record("mlflow", logging.WARNING)) and quiet.filter(record("mcp", logging.ERROR))


@pytest.mark.parametrize(
    ("verbose", "shown", "hidden"),
    [
        (True, ["httpx2", "mcp.client"], []),
        ("httpx2", ["httpx2", "httpx2._client"], ["httpx", "openai"]),
        (["openai", "mcp"], ["openai._base_client", "mcp.client.session"], ["httpx2"]),
        (False, [], ["httpx2", "openai"]),
    ],
)
def test_hydra_verbose_brings_named_loggers_back(verbose, shown: list[str], hidden: list[str]) -> None:
    chosen = LibraryFilter(verbose)
    assert all(chosen.filter(record(name)) for name in shown)
    assert not any(chosen.filter(record(name)) for name in hidden)


def test_the_job_logging_config_filters_the_console_only_and_follows_hydra_verbose() -> None:
    with initialize_config_module("koderz.conf", version_base=None):
        cfg = compose(
            "config", overrides=["hydra.verbose=[openai]", "hydra.runtime.output_dir=/run"], return_hydra_config=True
        )
    logging_cfg = OmegaConf.to_container(cfg.hydra.job_logging, resolve=True)
    assert isinstance(logging_cfg, dict)
    assert logging_cfg["filters"]["libraries"] == {"()": "koderz.cli.logs.LibraryFilter", "verbose": ["openai"]}
    assert logging_cfg["handlers"]["console"]["filters"] == ["libraries"]
    assert "filters" not in logging_cfg["handlers"]["file"]
    assert logging_cfg["handlers"]["file"]["filename"] == "/run/koderz.log"
    assert logging_cfg["root"]["handlers"] == ["console", "file"]
