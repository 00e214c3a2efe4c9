"""A run split into shards (shard=K/N) and merged back equals the same run made in one piece."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from koderz.errors import ConfigError
from koderz.merge import find_shards, merge
from koderz.records import RunFolder
from koderz.vocab import Mode
from tests.conftest import plan, run_job

QUIET = ("tracking=off", "cortex=off")
SLICE = ("end=10", "mode=comparative", "max_iterations=2")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """One unsharded run and a sweep folder with its three shards."""
    root = tmp_path_factory.mktemp("shards")

    async def make() -> None:
        await run_job(root / "whole", *SLICE, *QUIET)
        for k in range(3):
            await run_job(root / "sweep" / f"{k}_shard={k}" / "3", *SLICE, f"shard={k}/3", *QUIET)

    asyncio.run(make())
    return root / "whole", root / "sweep"


def test_shards_split_the_selection_round_robin() -> None:
    from koderz.datasets.loaders import load_dataset
    from koderz.runner import select_problems

    problems = load_dataset("humaneval")
    shards = [[p.task_id for p in select_problems(problems, plan("end=10", f"shard={k}/3"))] for k in range(3)]
    assert shards[0] == ["HumanEval/0", "HumanEval/3", "HumanEval/6", "HumanEval/9"]
    assert sorted(t for s in shards for t in s) == sorted(f"HumanEval/{i}" for i in range(10))


@pytest.mark.parametrize("bad", ["3/3", "1", "a/b", "-1/2", "0/0"])
def test_a_bad_shard_is_one_line_naming_it(bad: str) -> None:
    with pytest.raises(ConfigError, match=f"shard={bad}"):
        plan(f"shard={bad}")


def test_the_merged_run_equals_the_unsharded_run(runs, tmp_path) -> None:
    whole, sweep = runs
    shards = find_shards(sweep)
    assert len(shards) == 3
    merged = merge(shards, tmp_path / "merged")
    alone = RunFolder(whole).read_results()

    def verdicts(records):
        return sorted((r.mode, r.task_id, r.status, r.passed, r.attempts, r.tests_passed) for r in records)

    assert verdicts(merged.problems) == verdicts(alone.problems)
    assert [r.task_id for r in merged.problems if r.mode is Mode.ZERO_SHOT] == [f"HumanEval/{i}" for i in range(10)]
    for figure in ("problems", "answered", "passed", "pass_rate", "pass_at_k", "attempts", "cost", "tokens"):
        assert getattr(merged.summary, figure) == getattr(alone.summary, figure), figure
    assert merged.summary.comparative == alone.summary.comparative
    folder = RunFolder.existing(tmp_path / "merged")
    for mode in (Mode.ZERO_SHOT, Mode.ITERATIVE):
        assert [(s.task_id, s.passed) for s in folder.samples(mode)] == sorted(
            ((s.task_id, s.passed) for s in RunFolder(whole, parts=folder.parts).samples(mode)),
            key=lambda s: int(s[0].split("/")[1]),
        )
    assert len(folder.attempts()) == len(RunFolder(whole).attempts())
    assert set(merged.shard_timing) == {"0/3", "1/3", "2/3"}  # timing per shard and in total
    assert merged.timing.problem_count == 20
    assert merged.summary.merged_from == [str(s.path) for s in shards]


def test_a_missing_duplicate_or_foreign_shard_is_refused(runs, tmp_path) -> None:
    _, sweep = runs
    shards = find_shards(sweep)
    with pytest.raises(ConfigError, match=r"shard=2/3 is missing"):
        merge(shards[:2], tmp_path / "a")
    with pytest.raises(ConfigError, match=r"shard=0/3 appears twice"):
        merge([*shards, shards[0]], tmp_path / "b")
    foreign = tmp_path / "foreign"
    asyncio.run(run_job(foreign, *SLICE, "shard=2/3", "n_samples=2", *QUIET))
    with pytest.raises(ConfigError, match=r"its n_samples differs"):
        merge([*shards[:2], RunFolder.existing(foreign)], tmp_path / "c")


def test_the_merge_command(runs, tmp_path) -> None:
    _, sweep = runs
    out = tmp_path / "merged"
    done = subprocess.run(
        [sys.executable, "-m", "koderz.merge", str(sweep), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert RunFolder.existing(out).read_results().summary.problems == 10
    bad = subprocess.run([sys.executable, "-m", "koderz.merge", str(tmp_path / "none")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "koderz.merge: error: no shard run folders found (runs made with shard=K/N)"
    ]


@pytest.mark.slow
def test_four_shards_of_humaneval_from_one_sweep_merge_into_the_unsharded_run(tmp_path: Path) -> None:
    """The whole of HumanEval as a 4-job sweep (``shard=0/4,...``) through the real command line,
    merged: 164/164 and every task's verdict as in one unsharded run."""

    def koderz(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "koderz", *args, *QUIET], cwd=tmp_path, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, done.stderr[-2000:]

    koderz("-m", "shard=0/4,1/4,2/4,3/4", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    koderz(f"hydra.run.dir={tmp_path / 'whole'}")
    done = subprocess.run(
        [sys.executable, "-m", "koderz.merge", str(tmp_path / "sweep")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    merged = RunFolder.existing(tmp_path / "sweep" / "merged").read_results()
    alone = RunFolder(tmp_path / "whole").read_results()
    assert merged.summary.problems == merged.summary.passed == 164
    assert [(r.task_id, r.status, r.tests_passed) for r in merged.problems] == [
        (r.task_id, r.status, r.tests_passed) for r in alone.problems
    ]
    assert set(merged.shard_timing) == {"0/4", "1/4", "2/4", "3/4"}


def _shard(sweep: Path, k: int) -> Path:
    return sweep / f"{k}_shard={k}" / "3"


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(path: Path, items: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))


def _append_from(source: Path, target: Path, pick: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    _write(target, [*_lines(target), pick(_lines(source)[0])])


def _with_first(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    items = _lines(path)
    change(items[0])
    _write(path, items)


def _fail(record: dict[str, Any]) -> None:
    record["status"] = "failed"  # ``passed`` stays true


def _name_mechanism(name: str) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        record["isolation"]["mechanism"] = name

    return change


def _claim_problems(path: Path, count: int) -> None:
    results = json.loads(path.read_text())
    results["summary"]["problems"] = count
    path.write_text(json.dumps(results))


SAMPLES = "samples.zero_shot.jsonl"
TAMPERING = {
    "a record of another shard's task": (
        lambda sweep: _append_from(_shard(sweep, 1) / "results.jsonl", _shard(sweep, 0) / "results.jsonl", dict),
        r"0/3: record zero_shot HumanEval/1: its task is not in shard 0/3's slice",
    ),
    "a second record of its own task": (
        lambda sweep: _append_from(_shard(sweep, 0) / "results.jsonl", _shard(sweep, 0) / "results.jsonl", dict),
        r"0/3: record zero_shot HumanEval/0: appears twice",
    ),
    "passed on a failed record": (
        lambda sweep: _with_first(_shard(sweep, 1) / "results.jsonl", _fail),
        r"1/3: record zero_shot HumanEval/1: passed=true but status failed",
    ),
    "passed on a failed sample": (
        lambda sweep: _with_first(_shard(sweep, 2) / SAMPLES, _fail),
        r"2/3: sample 0 of zero_shot HumanEval/2: passed=true but status failed",
    ),
    "a second sample of the same index": (
        lambda sweep: _append_from(_shard(sweep, 2) / SAMPLES, _shard(sweep, 2) / SAMPLES, dict),
        r"2/3: sample 0 of zero_shot HumanEval/2: appears twice",
    ),
    "an attempt of another shard's task": (
        lambda sweep: _append_from(_shard(sweep, 1) / "attempts.jsonl", _shard(sweep, 2) / "attempts.jsonl", dict),
        r"2/3: attempt 0 of zero_shot HumanEval/1: its task is not in shard 2/3's slice",
    ),
    "a summary counting more problems than its slice": (
        lambda sweep: _claim_problems(_shard(sweep, 0) / "results.json", 5),
        r"0/3: results.json counts 5 problems; its slice has 4, its records 4",
    ),
    "an unknown containment": (
        lambda sweep: _with_first(_shard(sweep, 0) / "results.jsonl", _name_mechanism("trust me")),
        r"0/3: record zero_shot HumanEval/0: names no known containment \('trust me'\)",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_a_tampered_shard_is_refused_naming_shard_and_record_and_nothing_is_written(runs, tmp_path, case) -> None:
    tamper, message = TAMPERING[case]
    sweep = Path(shutil.copytree(runs[1], tmp_path / "sweep"))
    tamper(sweep)
    out = tmp_path / "merged"
    with pytest.raises(ConfigError, match=message):
        merge(find_shards(sweep), out)
    assert not out.exists()


def test_the_merge_command_refuses_a_tampered_shard_in_one_line_with_exit_2(runs, tmp_path) -> None:
    sweep = Path(shutil.copytree(runs[1], tmp_path / "sweep"))
    _with_first(_shard(sweep, 1) / "results.jsonl", _fail)
    done = subprocess.run(
        [sys.executable, "-m", "koderz.merge", str(sweep)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"koderz.merge: error: {_shard(sweep, 1)}: record zero_shot HumanEval/1: passed=true but status failed"
    ]
    assert not (sweep / "merged").exists()


def test_the_merged_summary_reports_the_weakest_containment_of_any_shard(runs, tmp_path) -> None:
    """Shards judged on machines that gave different containment: the merge says the weakest."""
    sweep = Path(shutil.copytree(runs[1], tmp_path / "sweep"))
    weak = _shard(sweep, 2)
    records = _lines(weak / "results.jsonl")
    for record in records:
        record["isolation"] = {"mechanism": "limits only", "note": "unshare refused"}
    _write(weak / "results.jsonl", records)
    merged = merge(find_shards(sweep), tmp_path / "merged")
    assert merged.summary.isolation == {"mechanism": "limits only", "note": "unshare refused"}
    strongest = merge(find_shards(Path(runs[1])), tmp_path / "untouched").summary.isolation
    assert strongest["mechanism"] != "limits only"  # every shard's own: this machine's containment
