"""Shared fixtures: composing the real Hydra config, locating ../shared/data."""

from __future__ import annotations

import os
import shutil
import tempfile
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

# the tests' runs fork their MLflow workers from tracking servers of their own, stopped at the
# end (one folder per session, also if this module is imported a second time)
_SERVERS_PREFIX = "kz-tracking-"
_inherited = Path(os.environ.get("KODERZ_TRACKING_SERVER_DIR", "/nonexistent"))
if _inherited.name.startswith(_SERVERS_PREFIX) and _inherited.is_dir():
    TRACKING_SERVERS = str(_inherited)
else:
    TRACKING_SERVERS = tempfile.mkdtemp(prefix=_SERVERS_PREFIX)
os.environ["KODERZ_TRACKING_SERVER_DIR"] = TRACKING_SERVERS


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from koderz.tracking.forked_worker import stop_started_servers
    from koderz.tracking.server import stop_servers

    stop_servers()
    stop_started_servers()
    shutil.rmtree(TRACKING_SERVERS, ignore_errors=True)


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
