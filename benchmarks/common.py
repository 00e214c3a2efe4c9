"""Shared helpers for the benchmark scripts: the machine, timed ``python -m koderz`` runs,
interpreter start-up, and the scripted HumanEval model (canonical answers) for the fake server.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from koderz.datasets.problem import Problem  # noqa: E402
from koderz.records import RunFolder  # noqa: E402
from tests.support.fakes.scripted_server import Reply, fenced, prompt_text  # noqa: E402

PYTHON = sys.executable
TASK = re.compile(r"Implement the Python function `([^`]+)`")


# ----------------------------------------------------------------------------- the machine


def machine() -> dict[str, Any]:
    """nproc, CPU model, memory, Python, OS, date and the load average right now."""
    cpu_model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": round(mem_gb, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_average": list(os.getloadavg()),
        "root": os.geteuid() == 0,
    }


def product_state() -> dict[str, Any]:
    """Which koderz was measured: HEAD, uncommitted files under koderz/ and conf/, a source hash."""
    digest = hashlib.sha256()
    for path in sorted([*ROOT.glob("koderz/**/*.py"), *ROOT.glob("koderz/conf/**/*.yaml")]):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")  # read-only: never touch the index

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, env=env, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted": git("diff", "--name-only", "HEAD", "--", "koderz").splitlines(),
        "source_sha256": digest.hexdigest()[:16],
    }


# ------------------------------------------------------------------------- koderz runs


@dataclass
class KoderzRun:
    """One timed ``python -m koderz`` subprocess and what it left in its run folder."""

    args: list[str]
    wall: float
    returncode: int
    results: dict[str, Any]
    stderr_tail: str

    @property
    def summary(self) -> dict[str, Any]:
        return self.results.get("summary", {})

    @property
    def timing(self) -> dict[str, Any]:
        return self.results.get("timing", {})

    @property
    def problems_wall(self) -> float:
        """First problem phase start to last problem phase end (excludes start-up)."""
        spans = [(p["start"], p["end"]) for p in self.timing.get("phases", []) if p.get("task_id")]
        return max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0.0

    def verdicts(self) -> list[tuple[Any, ...]]:
        """Per task, in file order: task id, pass, attempts, status, tests and each sample's verdict."""
        return [
            (
                r["task_id"],
                r["mode"],
                r["passed"],
                r["attempts"],
                r["solved_at"],
                r["status"],
                r["tests_passed"],
                r["tests_total"],
                tuple((o["index"], o["passed"], o["status"], o["tests_passed"]) for o in r["outcomes"]),
            )
            for r in self.results.get("problems", [])
        ]

    def cortex(self) -> dict[str, float]:
        """Cortex busy seconds and operation count from the run's own timing report."""
        cat = self.timing.get("categories", {}).get("cortex", {})
        start = self.timing.get("phase_totals", {}).get("cortex_start_session", {})
        return {
            "busy_s": cat.get("busy", 0.0),
            "wall_s": cat.get("wall", 0.0),
            "ops": cat.get("count", 0),
            # the session start waits for the server to start (in the background since the
            # deferred store): per-operation figures leave it out
            "session_start_s": start.get("total", 0.0),
            "session_starts": start.get("count", 0),
        }


def run_koderz(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 1800.0) -> KoderzRun:
    """Run ``python -m koderz ARGS`` in a fresh temp dir (its own outputs/ and cortex.db); time it."""
    with tempfile.TemporaryDirectory(prefix="koderz-bench-") as tmp:
        cwd = Path(tmp)
        run_dir = Path(tmp) / "run"
        full = [PYTHON, "-m", "koderz", *args, f"hydra.run.dir={run_dir}"]
        environment = dict(os.environ if env is None else env)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environment.get("PYTHONPATH")]))
        start = time.perf_counter()
        done = subprocess.run(full, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - start
        folder = RunFolder(run_dir)  # read typed (a malformed record fails here), kept as plain data
        results = folder.read_results().model_dump(mode="json") if folder.has_results() else {}
    if done.returncode != 0 or not results:
        raise RuntimeError(f"koderz {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return KoderzRun(args, wall, done.returncode, results, done.stderr[-500:])


def interpreter_startup(repeats: int = 5) -> dict[str, float]:
    """Seconds for ``python -c "import koderz.__main__"`` (median and min of ``repeats``)."""
    samples = []
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([PYTHON, "-c", "import koderz.__main__"], cwd=ROOT, env=env, check=True)
        samples.append(time.perf_counter() - start)
    return {"median_s": statistics.median(samples), "min_s": min(samples), "repeats": repeats}


# ---------------------------------------------------------------- the scripted HumanEval model

SPEC = "SPEC: follow the docstring exactly; handle the empty input; return the documented type."
GUIDANCE = "GUIDANCE: the function raises instead of computing the answer; implement the docstring."


class CanonicalModel:
    """A script for ``ScriptedServer``: each task's canonical solution in a python fence.

    Stateless, so answers do not depend on call order: a spec request gets a spec, a
    checkpoint review gets guidance, an attempt gets the right program, except that with
    ``wrong_first`` an attempt without feedback in its prompt gets a program that raises
    (so iterative mode needs a second attempt after the failing verdict).
    """

    def __init__(self, problems: tuple[Problem, ...], wrong_first: bool = False) -> None:
        self.wrong_first = wrong_first
        self.by_entry: dict[str, list[Problem]] = {}
        for problem in problems:
            self.by_entry.setdefault(problem.entry_point, []).append(problem)

    def problem_of(self, text: str) -> Problem:
        match = TASK.search(text)
        if match is None or match.group(1) not in self.by_entry:
            raise ValueError(f"no HumanEval task in prompt: {text[:200]!r}")
        candidates = self.by_entry[match.group(1)]
        if len(candidates) == 1:
            return candidates[0]
        return next(p for p in candidates if p.prompt.strip() in text)

    def __call__(self, body: dict[str, Any], route: str, call_index: int) -> Reply:
        text = prompt_text(body)
        if "Write a concise specification" in text:
            return Reply(SPEC)
        if "Diagnose what is going wrong" in text:
            return Reply(GUIDANCE)
        problem = self.problem_of(text)
        if self.wrong_first and "Your previous attempt" not in text:
            wrong = f"def {problem.entry_point}(*args, **kwargs):\n    raise ValueError('not implemented yet')\n"
            return Reply(fenced(wrong, "A first draft."))
        return Reply(fenced(problem.reference_program, "Here is the implementation."))


def scripted_model_args(openai_url: str) -> list[str]:
    """Overrides pointing all three roles at the scripted server as gpt-4o-mini."""
    return [
        "model=gpt-4o-mini",
        f"model.base_url={openai_url}",
        "model@spec_model=gpt-4o-mini",
        f"spec_model.base_url={openai_url}",
        "model@checkpoint_model=gpt-4o-mini",
        f"checkpoint_model.base_url={openai_url}",
    ]


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
