"""conf/cortex/*.yaml against the CortexConfig schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from koderz.cortex import CortexConfig

CONF = Path(__file__).resolve().parents[2] / "koderz" / "conf" / "cortex"


def load(name: str, *overrides: str) -> CortexConfig:
    merged = OmegaConf.merge(
        OmegaConf.structured(CortexConfig),
        OmegaConf.load(CONF / f"{name}.yaml"),
        OmegaConf.from_dotlist(list(overrides)),
    )
    config = OmegaConf.to_object(merged)
    assert isinstance(config, CortexConfig)
    return config


@pytest.mark.parametrize(
    ("name", "mode", "persistent"),
    [
        ("local", "local", True),
        ("persistent", "embedded", True),
        ("ephemeral", "embedded", False),
        ("off", "off", True),
        ("external", "external", True),
    ],
)
def test_group_files_match_the_schema(name, mode, persistent):
    cfg = load(name)
    assert (cfg.mode, cfg.persistent) == (mode, persistent)
    assert cfg.db.startswith("outputs/")


def test_persistent_flag_toggles_like_the_original_no_persistent_cortex():
    assert load("persistent", "persistent=false").persistent is False
    assert load("ephemeral", "persistent=true").persistent is True


def test_external_takes_command_and_args_or_url():
    cfg = load("external", "command=node", "args=[dist/index.js,--db,x.db]")
    assert (cfg.command, cfg.args) == ("node", ["dist/index.js", "--db", "x.db"])
    assert load("external", "url=http://127.0.0.1:8765/mcp").url == "http://127.0.0.1:8765/mcp"
