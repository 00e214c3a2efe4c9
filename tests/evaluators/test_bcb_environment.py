"""The BigCodeBench library check: found, missing and network libraries, one line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from koderz.bench.bcb_environment import check_environment, not_run_reason, unrunnable_line
from koderz.bench.bigcodebench import BigCodeBenchJudging, library_paths
from koderz.datasets.bigcodebench import task_of
from koderz.problems import load_benchmark
from tests.support.bench_files import bcb_config


def test_every_own_task_can_run_in_this_environment():
    report = check_environment(load_benchmark(bcb_config()), library_paths(BigCodeBenchJudging()))
    assert unrunnable_line(report) is None
    assert all(not_run_reason(r) is None for r in report)


def test_an_empty_environment_lacks_the_third_party_libraries_only(tmp_path: Path):
    problems = load_benchmark(bcb_config())
    report = check_environment(problems, [str(tmp_path)])
    by_id = {r.task_id: r for r in report}
    for problem in problems:
        third_party = {"numpy", "pandas", "matplotlib"} & set(task_of(problem).libs)
        assert set(by_id[problem.task_id].missing) == third_party
    line = unrunnable_line(report)
    assert line is not None and "\n" not in line and "numpy" in line
    reason = not_run_reason(next(r for r in report if r.missing))
    assert reason is not None and reason.startswith("library environment lacks")


def test_network_libraries_are_marked():
    problem = load_benchmark(bcb_config())[0]
    task = replace(task_of(problem), libs=("requests", "json"))
    report = check_environment([replace(problem, extra={"bigcodebench": task})], [])
    assert report[0].network and report[0].missing == ("requests",)
