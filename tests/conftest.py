"""Shared fixtures: composing the real Hydra config, locating ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from koderz.config import register
from koderz.plan import Plan

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "koderz" / "conf"
# ../shared/data beside the main checkout, or beside the worktrees' folder (/work/wt/NAME -> /work/shared)
SHARED_DATA = next(
    (p / "shared" / "data" for p in REPO.parents[:2] if (p / "shared" / "data").is_dir()),
    REPO.parent / "shared" / "data",
)

register()

pytest_plugins = ["tests.support.processes"]  # the no_stray_processes fixture


def compose_config(*overrides: str):
    """The composed job config, exactly as ``python -m koderz`` builds it."""
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose("config", overrides=list(overrides), return_hydra_config=False)


def plan(*overrides: str) -> Plan:
    """The typed plan of ``python -m koderz OVERRIDES``."""
    return Plan.build(compose_config(*overrides))


async def run_job(folder: Path, *overrides: str):
    """Run the job of ``python -m koderz OVERRIDES`` in ``folder``; returns its ``RunOutcome``."""
    from koderz.runner import Runner

    return await Runner(plan(*overrides), folder).run()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    return SHARED_DATA
