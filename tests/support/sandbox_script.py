"""Run a few programs through a ``Sandbox`` in another interpreter (another uid's view, a seccomp
filter, no capabilities, a Python every uid can read) and get the verdicts back as JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

SCRIPT = """
import asyncio, json, sys
from koderz.datasets.loaders import load_dataset
from koderz.errors import SandboxError
from koderz.sandbox.sandbox import Sandbox, SandboxConfig
async def main():
    config, task, programs = SandboxConfig(**json.loads(sys.argv[1])), sys.argv[2], json.loads(sys.argv[3])
    problem = {p.task_id: p for p in load_dataset("humaneval")}[task]
    sandbox = Sandbox(config)
    try:
        verdicts = [await sandbox.evaluate(problem, program or problem.reference_program) for program in programs]
        report = {"verdicts": [v.to_dict() for v in verdicts], "summary": sandbox.containment.summary()}
    except SandboxError as exc:
        report = {"error": str(exc)}
    finally:
        await sandbox.drain()
        sandbox.close()
    print(json.dumps(report))
asyncio.run(main())
"""


def run_sandbox(
    python: str,
    config: dict[str, Any],
    task: str,
    programs: list[str],
    env: dict[str, str],
    cwd: Path,
    prefix: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``{"verdicts": [...], "summary": ...}``, or ``{"error": ...}`` when the sandbox refused;
    ``""`` as a program stands for the task's reference solution. ``prefix`` wraps the command
    (e.g. setpriv, or the seccomp launcher)."""
    done = subprocess.run(
        [*prefix, python, "-c", SCRIPT, json.dumps(config), task, json.dumps(programs)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))
