"""The runner under real conditions: loop responsiveness, SIGKILL + resume, Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from koderz.datasets.loaders import load_dataset
from koderz.runner import Runner
from tests.conftest import compose_config
from tests.fakes.scripted_server import ScriptedServer, fenced

QUIET = ["tracking=off", "cortex=off"]


class LoopLagProbe:
    """Measures how late a 5 ms sleep wakes up: the longest time the loop was blocked."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.samples = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, loop.time() - before - 0.005)
            self.samples += 1


async def _run_with_probe(cfg, tmp_path: Path, monkeypatch) -> tuple[dict, LoopLagProbe]:
    probe = LoopLagProbe()
    real_run_all = Runner._run_all

    async def probed(self, *args):
        task = asyncio.create_task(probe.run())
        try:
            return await real_run_all(self, *args)
        finally:
            task.cancel()

    monkeypatch.setattr(Runner, "_run_all", probed)
    return await Runner(cfg, tmp_path / "run").run(), probe


async def test_no_callback_blocks_the_event_loop_for_50ms(tmp_path: Path, monkeypatch) -> None:
    """While problems run (4 at once, iterative, persistent Cortex), the loop stays responsive."""
    monkeypatch.chdir(tmp_path)
    cfg = compose_config("end=64", "concurrency=4", "mode=iterative", "tracking=off", "cortex=persistent")
    summary, probe = await _run_with_probe(cfg, tmp_path, monkeypatch)
    assert summary["passed"] == 64
    assert probe.samples > 20
    assert probe.worst < 0.050, f"the event loop was blocked for {probe.worst * 1000:.0f} ms"


async def test_model_calls_over_http_do_not_block_the_event_loop(tmp_path: Path, monkeypatch) -> None:
    """The same with the real OpenAI SDK client: 8 problems at once against a 50 ms server."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    problems = load_dataset("humaneval")[:32]
    answers = {p.entry_point: fenced(p.reference_program) for p in problems}

    def script(body, route, index):
        text = body["messages"][-1]["content"]
        return next((answer for name, answer in answers.items() if f"function `{name}`" in text), "no")

    with ScriptedServer(script, latency=0.05).in_thread() as server:
        cfg = compose_config(
            "model=gpt-4o-mini",
            f"model.base_url={server.openai_url}",
            "spec.enabled=false",
            "end=32",
            "concurrency=8",
            "tracking=off",
            "cortex=persistent",
            "cache=false",
        )
        summary, probe = await _run_with_probe(cfg, tmp_path, monkeypatch)
    assert summary["passed"] == 32
    assert probe.worst < 0.050, f"the event loop was blocked for {probe.worst * 1000:.0f} ms"


def _start(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "koderz", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_results(folder_glob: Path, pattern: str, lines: int, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in folder_glob.glob(pattern):
            if len(path.read_text().splitlines()) >= lines:
                return path.parent
        time.sleep(0.1)
    raise AssertionError("the run never got going")


def _verdicts(folder: Path) -> dict[str, tuple[bool, int, int]]:
    records = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    return {r["task_id"]: (r["passed"], r["tests_passed"], r["tests_total"]) for r in records}


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    args = ["end=40", *QUIET]
    proc = _start(tmp_path, *args)
    folder = _wait_for_results(tmp_path / "outputs" / "runs", "*/*/results.jsonl", 5)
    proc.kill()
    proc.wait()
    partial = _verdicts(folder)
    assert 5 <= len(partial) < 40 and not (folder / "results.json").exists()
    done = subprocess.run(
        [sys.executable, "-m", "koderz", f"resume={folder}"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    resumed = _verdicts(folder)
    assert len(resumed) == 40 and {k: resumed[k] for k in partial} == partial
    summary = json.loads((folder / "results.json").read_text())["summary"]
    assert summary["problems"] == 40 and summary["passed"] == 40
    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    fresh = subprocess.run(
        [sys.executable, "-m", "koderz", *args], cwd=fresh_dir, capture_output=True, text=True, timeout=300
    )
    assert fresh.returncode == 0, fresh.stderr
    assert _verdicts(next((fresh_dir / "outputs" / "runs").glob("*/*"))) == resumed


def test_first_ctrl_c_stops_new_problems_and_keeps_finished_ones(tmp_path: Path) -> None:
    proc = _start(tmp_path, *QUIET)
    folder = _wait_for_results(tmp_path / "outputs" / "runs", "*/*/results.jsonl", 3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    results = json.loads((folder / "results.json").read_text())
    assert results["summary"]["interrupted"] is True
    assert 3 <= results["summary"]["problems"] < 164
    assert len((folder / "results.jsonl").read_text().splitlines()) == results["summary"]["problems"]
    assert "resume=" in out + err


def test_second_ctrl_c_exits_at_once(tmp_path: Path) -> None:
    sleeper = "import time\ndef has_close_elements(numbers, threshold):\n    time.sleep(120)\n"
    (tmp_path / "slow.jsonl").write_text(json.dumps({"task_id": "HumanEval/0", "solution": sleeper}) + "\n")
    proc = _start(tmp_path, "model=replay", "model.samples=slow.jsonl", "end=1", *QUIET)
    _wait_for_results(tmp_path / "outputs" / "runs", "*/*/config.yaml", 1)
    time.sleep(1.5)  # the attempt is now sleeping in the sandbox
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert time.monotonic() - started < 3  # not the 5 s grace, not the attempt's time limit
