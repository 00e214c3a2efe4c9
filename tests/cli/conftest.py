"""Every CLI test fails if a process it started outlives it (``tests/support/processes.py``)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_strays(no_stray_processes: None) -> None:
    """Applies ``no_stray_processes`` to every test in this folder."""
