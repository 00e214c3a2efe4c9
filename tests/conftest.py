"""Shared fixtures: composing the real Hydra config, locating ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from koderz.config import register

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "koderz" / "conf"
SHARED_DATA = REPO.parent / "shared" / "data"

register()


def compose_config(*overrides: str):
    """The composed job config, exactly as ``python -m koderz`` builds it."""
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose("config", overrides=list(overrides), return_hydra_config=False)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    return SHARED_DATA
