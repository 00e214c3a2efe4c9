"""The job talks at once: the header line comes first, before any heavy import, and a missing key
stops it before anything heavy is imported (timings are in benchmarks/default_path.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.env import clean_env

PROBE = """
import json, logging, sys
from koderz.cli.app import main
HEAVY = ("openai", "ollama", "mlflow", "mcp", "koderz.runner", "koderz.sandbox", "koderz.experiment")
seen = []
class FirstLines(logging.Handler):
    def emit(self, record):
        if len(seen) < 1:
            seen.append([record.getMessage(), sorted(m for m in sys.modules if m.startswith(HEAVY))])
logging.getLogger("koderz").addHandler(FirstLines())  # Hydra replaces the root's handlers
sys.argv = ["koderz", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps([code, seen]))
"""


def probe(cwd: Path, *args: str, **env: str) -> tuple[int, list[list]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=240
    )
    code, seen = json.loads(done.stdout.strip().splitlines()[-1])
    return code, seen


def test_the_header_is_the_first_line_and_comes_before_any_heavy_import(tmp_path: Path) -> None:
    code, seen = probe(tmp_path, "end=2", "tracking=off", "cortex=off")
    assert code == 0
    [(first, heavy)] = seen
    assert first == "koderz: reference on 2 humaneval problems (zero_shot, concurrency 1)"
    assert heavy == []


def test_a_missing_key_is_one_line_before_any_heavy_import(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "koderz", "model=gpt-4o-mini", "tracking=off"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    assert len(lines) == 1 and "OPENAI_API_KEY" in lines[0]
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & {"openai", "mlflow", "mcp", "koderz.runner", "koderz.sandbox.sandbox"}
