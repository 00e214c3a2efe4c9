"""A Python interpreter every uid can read, running this checkout with this venv's packages.

As root, ``sandbox.containment=limits_only`` runs the program as an unprivileged uid, which must be
able to read the interpreter's standard library; this machine's pyenv lives under /root (mode 700).
``readable_python(directory)`` makes a venv there over a system Python of the same version whose
``.pth`` file puts this checkout and the current interpreter's site-packages on its path.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")


def _readable_by_all(path: str) -> bool:
    """Every directory from ``path`` up is searchable by other users."""
    while True:
        if not os.stat(path).st_mode & 0o001:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def system_python() -> str | None:
    """A system Python of this interpreter's version whose standard library any uid can read."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for python in SYSTEM_PYTHONS:
        if not os.access(python, os.X_OK):
            continue
        probe = subprocess.run(
            [python, "-c", "import os, sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}', os.__file__)"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        found, _, stdlib = probe.stdout.strip().partition(" ")
        if probe.returncode == 0 and found == version and _readable_by_all(os.path.dirname(stdlib)):
            return python
    return None


def readable_python(directory: Path) -> str | None:
    """The venv's interpreter (made in ``directory``), or None where no such system Python exists."""
    base = system_python()
    if base is None:
        return None
    venv = directory / "venv"
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = subprocess.run(
        [str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    Path(purelib, "koderz-tests.pth").write_text(f"{REPO}\n{sysconfig.get_paths()['purelib']}\n")
    return str(venv / "bin/python")
