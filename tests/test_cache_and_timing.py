"""Result cache hits for API models, and the timing figures a run writes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

import pytest

from koderz import provenance
from koderz.datasets.loaders import dataset_version
from koderz.errors import ConfigError
from koderz.records import ProblemRecord, ProblemResult, RunFolder
from koderz.report import format_summary
from koderz.result_cache import DEFAULT_PATH, JUDGE_CODE, JUDGE_FILES, ResultCache, run_key
from koderz.sandbox.mechanism import Mechanism
from koderz.vocab import Mode, Status
from tests.conftest import plan, run_job
from tests.support.fakes.scripted_server import Rules, ScriptedServer, fenced

RIGHT = fenced("def add(x: int, y: int):\n    return x + y\n")
RAISES = fenced("def add(x: int, y: int):\n    raise ValueError('no')\n")


def one_problem_against(url: str) -> list[str]:
    """HumanEval/53 with gpt-4o-mini's config pointed at the scripted server, no spec, memory or
    tracking; ``cache=true``: the scripted server is on loopback, a local server the default
    (``cache=auto``) does not cache without a digest of its weights (tests/models/test_cache_policy.py)."""
    return [
        "model=gpt-4o-mini",
        f"model.base_url={url}",
        "cache=true",
        "spec.enabled=false",
        "problems=[HumanEval/53]",
        "tracking=off",
        "cortex=off",
    ]


async def test_a_repeated_run_is_served_from_the_cache_without_model_calls(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    async with ScriptedServer(Rules([(r"specification", ["SPEC"])], default=RIGHT)) as server:
        args = one_problem_against(server.openai_url)
        first = await run_job(tmp_path / "first", *args)
        calls = len(server.chat_requests)
        second = await run_job(tmp_path / "second", *args)
        assert len(server.chat_requests) == calls == 1
        changed = await run_job(tmp_path / "third", *args, "prompt.cot=false")
        assert len(server.chat_requests) == 2  # a different prompt setting is a different result
        await run_job(tmp_path / "fourth", *args, "cache=false")
        assert len(server.chat_requests) == 3
    assert (first.summary.cached, second.summary.cached, changed.summary.cached) == (0, 1, 0)
    assert (first.summary.cached_verdicts, second.summary.cached_verdicts) == (0, 1)  # zero-shot: one attempt
    saved = json.loads((tmp_path / "second" / "results.json").read_text())["summary"]
    assert saved["cached"] == saved["cached_verdicts"] == 1
    assert "1 problems (1 verdicts) from the result cache" in format_summary(second.summary, "x")
    assert first.summary.passed == second.summary.passed == 1
    # the cached problem's tokens and cost were saved, not spent again
    assert first.summary.tokens.input > 0 and second.summary.tokens.input == 0
    assert second.summary.saved_tokens == first.summary.tokens and second.summary.saved_cost == first.summary.cost.total
    (record,) = RunFolder(tmp_path / "second").records()
    assert record.cached and record.tests_total > 0
    assert "def add" in (tmp_path / "second" / "samples.jsonl").read_text()


async def test_a_candidate_that_raises_is_a_verdict_and_is_cached(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    async with ScriptedServer(Rules([], default=RAISES)) as server:
        args = one_problem_against(server.openai_url)
        first = await run_job(tmp_path / "first", *args)
        calls = len(server.chat_requests)
        second = await run_job(tmp_path / "second", *args)
        assert len(server.chat_requests) == calls  # no HTTP call: served from the cache
    assert first.summary.statuses == {"error": 1} and first.summary.answered == 1 and first.summary.unanswered == 0
    assert second.summary.cached == 1 and second.summary.statuses == {"error": 1}


async def test_timing_figures_add_up_and_reach_results_json(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    outcome = await run_job(
        tmp_path / "run",
        "end=8",
        "concurrency=4",
        "tracking=off",
        "cortex=persistent",
        "mode=iterative",
        f"timing.export={tmp_path / 'timing-export.json'}",
        "timing.report=true",
    )
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    timing = json.loads((tmp_path / "run" / "timing.json").read_text())
    assert results["timing"] == timing == json.loads((tmp_path / "timing-export.json").read_text())
    assert timing["total_duration"] == outcome.summary.duration
    assert abs(timing["total_duration"] - timing["tracked_wall"] - timing["overhead"]) < 1e-9
    assert timing["overhead"] >= 0
    assert all(p["end"] - p["start"] <= timing["total_duration"] for p in timing["phases"])
    names = set(timing["phase_totals"])
    assert {"launch", "spec_generation", "iteration_generate", "iteration_test", "cortex_remember"} <= names
    assert {"cortex_start_session", "cortex_open", "cortex_close"} <= names
    assert set(timing["per_problem"]) == {f"HumanEval/{i}" for i in range(8)}
    for category in timing["categories"].values():
        assert category["wall"] <= category["busy"] + 1e-9
    assert timing["categories"]["test"]["busy"] == timing["sandbox_busy"] > 0  # the sandbox has its own category
    assert timing["max_in_flight"] > 1  # four problems at a time overlapped


FULL = Mechanism.ROOT_NAMESPACES
WEAK = Mechanism.LIMITS_ONLY


def test_the_cache_key_ignores_settings_that_cannot_change_a_zero_shot_result() -> None:
    base = run_key(plan("model=gpt-4o-mini"), "v1", FULL)
    assert run_key(plan("model=gpt-4o-mini", "checkpoints.enabled=false"), "v1", FULL) == base
    assert run_key(plan("model=gpt-4o-mini", "max_iterations=3"), "v1", FULL) == base
    assert (
        run_key(plan("model=gpt-4o-mini", "sandbox.max_processes=1", "sandbox.fork_server=false"), "v1", FULL) == base
    )
    assert run_key(plan("model=gpt-4o-mini", "mode=iterative", "checkpoints.enabled=false"), "v1", FULL) != run_key(
        plan("model=gpt-4o-mini", "mode=iterative"), "v1", FULL
    )
    assert run_key(plan("model=gpt-4o-mini"), "v2", FULL) != base


@pytest.mark.parametrize(
    "limit", ["test_timeout=5", "sandbox.memory_mb=512", "sandbox.cpu_factor=2", "sandbox.isolate=false"]
)
def test_the_cache_key_names_the_containment_used_the_judging_code_and_every_limit(limit: str) -> None:
    base = run_key(plan("model=gpt-4o-mini"), "v1", FULL)
    assert base["judge_code"] == JUDGE_CODE and base["containment"] == FULL
    assert run_key(plan("model=gpt-4o-mini"), "v1", WEAK) != base
    assert run_key(plan("model=gpt-4o-mini", limit), "v1", FULL) != base
    assert {"processes", "tmp_mb", "output_kb", "max_items"} <= set(base["sandbox"])


def test_the_judging_code_digest_is_read_from_the_judges_source_files(tmp_path: Path) -> None:
    names = {path.name for path in JUDGE_FILES}
    assert {
        "judge.py",
        "judge_server.py",
        "framing.py",
        "oracle.py",
        "wire.py",
        "child.py",
        "sandbox.py",
        "verdict.py",  # the verdict's shape (e.g. tests_run): a cached verdict of another shape is never served
        "experiment.py",
        "prompts.py",
        "evalplus_sanitize.py",
        "bcb_harness.py",  # the benchmarks' harness programs and evaluators
        "lcb_harness.py",
        "livecodebench.py",
    } <= names
    copies = [Path(shutil.copy(path, tmp_path / f"{i}-{path.name}")) for i, path in enumerate(JUDGE_FILES)]
    before = provenance.source_digest(copies)
    oracle = next(c for c in copies if c.name.endswith("-oracle.py"))
    oracle.write_bytes(oracle.read_bytes().replace(b"RTOL = 1e-07", b"RTOL = 1e-03"))
    assert provenance.source_digest(copies) != before


def _result(mechanism: Mechanism) -> ProblemResult:
    record = ProblemRecord(
        task_id="HumanEval/53",
        mode=Mode.ZERO_SHOT,
        status=Status.PASSED,
        passed=True,
        attempts=1,
        isolation={"mechanism": mechanism.value},
        mechanism=mechanism,
    )
    return ProblemResult(record=record)


async def test_a_verdict_judged_under_weaker_containment_or_by_other_judging_code_is_not_served(tmp_path) -> None:
    path = tmp_path / "cache" / "results.sqlite"
    key = run_key(plan("model=gpt-4o-mini"), "v1", FULL)
    await ResultCache(path, run_key(plan("model=gpt-4o-mini"), "v1", WEAK)).put(
        Mode.ZERO_SHOT, "HumanEval/53", _result(WEAK)
    )
    await ResultCache(path, key | {"judge_code": "an older judge"}).put(Mode.ZERO_SHOT, "HumanEval/53", _result(FULL))
    cache = ResultCache(path, key)
    assert await cache.get(Mode.ZERO_SHOT, "HumanEval/53") is None
    await cache.put(Mode.ZERO_SHOT, "HumanEval/53", _result(WEAK))  # a record that names another mechanism
    assert await cache.get(Mode.ZERO_SHOT, "HumanEval/53") is None
    await cache.put(Mode.ZERO_SHOT, "HumanEval/53", _result(FULL))
    served = await cache.get(Mode.ZERO_SHOT, "HumanEval/53")
    assert served is not None and served.record.cached and served.record.mechanism == FULL


async def test_a_verdict_judged_under_other_measured_reference_times_is_not_served(tmp_path) -> None:
    """Per-input CPU budgets come from the ground truth's measured reference times: a ground truth
    measured again (other times, or another calibration) keys its verdicts apart."""
    import dataclasses

    from koderz.datasets.loaders import load_dataset
    from koderz.result_cache import reference_times

    problem = next(p for p in load_dataset("humaneval_plus") if p.task_id == "HumanEval/53")
    assert reference_times(problem)  # EvalPlus datasets carry measured times
    remeasured = dataclasses.replace(problem, input_seconds=tuple(t * 2 for t in problem.input_seconds))
    recalibrated = dataclasses.replace(problem, calibration=problem.calibration * 2)
    cache = ResultCache(tmp_path / "cache" / "results.sqlite", run_key(plan("model=gpt-4o-mini"), "v1", FULL))
    await cache.put(Mode.ZERO_SHOT, problem.task_id, _result(FULL), reference_times(problem))
    for other in (remeasured, recalibrated):
        assert await cache.get(Mode.ZERO_SHOT, problem.task_id, reference_times(other)) is None
    assert await cache.get(Mode.ZERO_SHOT, problem.task_id, reference_times(problem)) is not None


async def test_a_run_under_stronger_containment_does_not_reuse_a_limits_only_verdict(tmp_path, monkeypatch) -> None:
    """Through the runner: a passing verdict stored for this very run under ``limits_only`` (as a run
    with ``sandbox.containment=limits_only`` stores it) is not served to a run under this machine's
    containment, which asks the model again; a third run is served from the second's entry."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    async with ScriptedServer(Rules([], default=RIGHT)) as server:
        args = one_problem_against(server.openai_url)
        weak = run_key(plan(*args), dataset_version("humaneval"), WEAK)
        await ResultCache(DEFAULT_PATH, weak).put(Mode.ZERO_SHOT, "HumanEval/53", _result(WEAK))
        strong = await run_job(tmp_path / "strong", *args)
        again = await run_job(tmp_path / "again", *args)
        assert len(server.chat_requests) == 1
    assert strong.summary.cached == 0 and strong.summary.mechanism == FULL
    assert again.summary.cached == 1 and again.summary.mechanism == FULL


def test_an_unsafe_result_cache_folder_or_file_is_refused(tmp_path) -> None:
    key = run_key(plan("model=gpt-4o-mini"), "v1", FULL)
    folder = tmp_path / "outputs" / "cache"
    folder.mkdir(parents=True)
    os.chmod(folder, 0o777)
    with pytest.raises(ConfigError, match=r"the result cache folder .*cache: it is writable by group or others"):
        ResultCache(folder / "results.sqlite", key)
    os.chmod(folder, 0o700)
    elsewhere = tmp_path / "elsewhere.sqlite"
    elsewhere.write_bytes(b"")
    (folder / "results.sqlite").symlink_to(elsewhere)
    with pytest.raises(ConfigError, match=r"results.sqlite: cannot be opened safely"):
        ResultCache(folder / "results.sqlite", key)
    assert elsewhere.read_bytes() == b""


async def test_the_command_refuses_an_unsafe_result_cache_folder_in_one_line_and_leaves_no_run(tmp_path) -> None:
    cache = tmp_path / "outputs" / "cache"
    cache.mkdir(parents=True)
    os.chmod(cache, 0o777)
    run_dir = tmp_path / "run"
    env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
    async with ScriptedServer(Rules([], default=RIGHT)) as server:
        args = [*one_problem_against(server.openai_url), f"hydra.run.dir={run_dir}"]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "koderz", *args, cwd=tmp_path, env=env, stdout=PIPE, stderr=PIPE
        )
        _, err = await asyncio.wait_for(proc.communicate(), 300)
    errors = [line for line in err.decode().splitlines() if "error" in line]
    assert proc.returncode == 2, err.decode()[-2000:]
    assert len(errors) == 1 and f"the result cache folder {cache}: it is writable by group or others" in errors[0]
    assert not run_dir.exists() and list(cache.iterdir()) == []
