"""koderz installed from its wheel, in a fresh venv outside the repository, run from empty
directories: the configs ship in the package and Hydra finds them (``pkg://koderz.conf``).

Building the wheel is what ``pip install .`` does (an isolated build: setuptools comes from
the package index), so this is ``slow``. The venv sees this interpreter's installed
dependencies through a folder of links (none of koderz itself, no Hydra plugins: the joblib
launcher is then an extra that is missing), and koderz comes from the wheel alone.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
QUIET = ["tracking=off", "cortex=off"]

pytestmark = pytest.mark.slow


@dataclass
class Installed:
    wheel: Path
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def script(self) -> Path:
        return self.venv / "bin" / "koderz"


def env() -> dict[str, str]:
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "HYDRA_FULL_ERROR", "OPENAI_API_KEY", "MLFLOW_", "KODERZ_MLFLOW")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def run(command: list[str | Path], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy: building in the repository would leave build/ and *.egg-info there
    shutil.copytree(REPO / "koderz", source / "koderz", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", root / "dist", source], root)
    assert built.returncode == 0, built.stderr
    (wheel,) = (root / "dist").glob("koderz-*.whl")

    venv = root / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", venv], root)
    assert made.returncode == 0, made.stderr
    links = root / "dependencies"
    links.mkdir()
    for site_dir in site.getsitepackages():
        for entry in Path(site_dir).iterdir():
            name = entry.name
            if name.startswith(("koderz", "__editable__", "hydra_plugins")) or name.endswith(".pth"):
                continue
            if not (links / name).exists():
                (links / name).symlink_to(entry)
    purelib = run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root)
    (Path(purelib.stdout.strip()) / "dependencies.pth").write_text(f"{links}\n")
    install = run(
        [sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-deps", "-q", wheel], root
    )
    assert install.returncode == 0, install.stderr
    return Installed(wheel, venv)


def empty_dir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


def test_the_wheel_ships_every_config_file(installed: Installed) -> None:
    shipped = {name for name in zipfile.ZipFile(installed.wheel).namelist() if name.startswith("koderz/conf/")}
    in_repo = {str(p.relative_to(REPO)) for p in (REPO / "koderz" / "conf").rglob("*") if p.suffix in (".yaml", ".py")}
    assert in_repo <= shipped and "koderz/conf/hydra/help/koderz.yaml" in shipped


def test_koderz_comes_from_the_wheel_not_the_repository(installed: Installed, tmp_path: Path) -> None:
    where = run([installed.python, "-c", "import koderz, hydra; print(koderz.__file__)"], empty_dir(tmp_path, "cwd"))
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed.venv) and not Path(where.stdout.strip()).is_relative_to(
        REPO
    )


def test_the_installed_script_runs_the_main_job_from_an_empty_directory(installed: Installed, tmp_path: Path) -> None:
    cwd = empty_dir(tmp_path, "empty")
    done = run([installed.script, "end=3", *QUIET], cwd)
    assert done.returncode == 0, done.stderr
    (folder,) = (cwd / "outputs" / "runs").glob("*/*")
    summary = json.loads((folder / "results.json").read_text())["summary"]
    assert (summary["problems"], summary["passed"]) == (3, 3)


def test_a_sweep_runs_from_another_directory(installed: Installed, tmp_path: Path) -> None:
    cwd = empty_dir(tmp_path, "elsewhere")
    done = run([installed.python, "-m", "koderz", "-m", "mode=zero_shot,iterative", "end=2", *QUIET], cwd)
    assert done.returncode == 0, done.stderr
    jobs = sorted(p for p in (cwd / "outputs" / "sweeps").glob("*/*/*") if p.is_dir())
    assert [p.name.split(",")[-2:] for p in jobs] == [
        ["mode=zero_shot", "tracking=off"],
        ["mode=iterative", "tracking=off"],
    ]
    assert all(json.loads((p / "results.json").read_text())["summary"]["passed"] == 2 for p in jobs)


def test_help_and_group_errors_list_the_shipped_options(installed: Installed, tmp_path: Path) -> None:
    cwd = empty_dir(tmp_path, "cwd")
    help_text = run([installed.script, "--help"], cwd).stdout
    assert any(line.startswith("model: ") and "reference" in line for line in help_text.splitlines())
    bad = run([installed.script, "tracking=nope"], cwd)
    assert bad.returncode == 2
    assert (
        bad.stderr
        == "koderz: error: tracking=nope: no option 'nope' in config group tracking (choose from mlflow, off)\n"
    )


def test_a_missing_launcher_extra_is_one_line_with_the_pip_command(installed: Installed, tmp_path: Path) -> None:
    done = run([installed.script, "-m", "hydra/launcher=joblib", "end=1", *QUIET], empty_dir(tmp_path, "cwd"))
    assert done.returncode == 2
    assert done.stderr == (
        "koderz: error: hydra/launcher=joblib: needs the plugin hydra/launcher=joblib, which is not installed: "
        "pip install 'koderz[joblib]'\n"
    )
