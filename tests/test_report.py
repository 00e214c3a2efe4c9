"""Run summaries from problem records: pass rate over answered problems, pass@k, base vs plus, costs."""

from __future__ import annotations

import pytest

from koderz import report
from koderz.records import AttemptOutcome, Cost, ProblemRecord, Roles, Tokens
from koderz.vocab import Mode, Status


def record(
    task: str,
    *verdicts: bool,
    mode: Mode = Mode.ZERO_SHOT,
    status: Status | None = None,
    base: tuple[bool, ...] | None = None,
    cost: float = 0.0,
    cached: bool = False,
) -> ProblemRecord:
    """A record with one outcome per verdict (base verdicts for EvalPlus datasets)."""
    outcomes = [
        AttemptOutcome(
            index=i,
            status=Status.PASSED if ok else Status.FAILED,
            passed=ok,
            base_passed=None if base is None else base[i],
        )
        for i, ok in enumerate(verdicts)
    ]
    passed = any(verdicts)
    return ProblemRecord(
        task_id=task,
        mode=mode,
        status=status or (Status.PASSED if passed else Status.FAILED),
        passed=passed and status is None,
        base_passed=None if base is None else any(base),
        attempts=len(verdicts),
        solved_at=next((i + 1 for i, ok in enumerate(verdicts) if ok), None),
        outcomes=outcomes,
        cost=Cost(total=cost, by_tier={"frontier": cost}, frontier_estimate=2 * cost, savings=cost),
        tokens=Tokens(input=100, output=10),
        cached=cached,
    )


def summarize(
    records: list[ProblemRecord],
    mode: Mode = Mode.ZERO_SHOT,
    selected: int | None = None,
    roles: Roles | None = None,
    spec_reuse: bool = True,
):
    return report.summarize(
        records,
        run_id="r-abc123",
        roles=roles or Roles(coder="m"),
        mode=mode,
        dataset="humaneval",
        prompt="koderz plain",
        selected=len(records) if selected is None else selected,
        spec_reuse=spec_reuse,
    )


def test_pass_at_k_is_human_evals_estimator_for_every_k_up_to_n() -> None:
    # n=5, c=2: pass@1 = 2/5; pass@5 = 1 (all samples drawn)
    assert report.pass_at_k([[True, True, False, False, False]]) == pytest.approx({"pass@1": 0.4, "pass@5": 1.0})
    # n=10, c=1: pass@5 = 1 - C(9,5)/C(10,5) = 0.5
    assert report.pass_at_k([[True] + [False] * 9])["pass@5"] == pytest.approx(0.5)
    assert report.pass_at_k([[True], [True, False]]) == {"pass@1": 0.75}  # k up to the fewest samples
    assert report.pass_at_k([]) == {}


def test_pass_rate_is_over_answered_problems_and_the_unanswered_are_counted_apart() -> None:
    records = [
        record("a", True),
        record("b", False),
        record("c", status=Status.MODEL_ERROR),
        record("d", status=Status.HARNESS_ERROR),
    ]
    summary = summarize(records, selected=6)
    assert (summary.answered, summary.passed, summary.pass_rate) == (2, 1, 0.5)
    assert (summary.unanswered, summary.not_run, summary.problems) == (2, 2, 6)
    assert summary.statuses == {"failed": 1, "harness_error": 1, "model_error": 1, "passed": 1}
    text = report.format_summary(summary, "/run")
    assert "UNANSWERED" in text and "model_error 1" in text and "NOT RUN" in text


def test_a_candidate_error_is_a_verdict_not_an_unanswered_problem() -> None:
    summary = summarize([record("a", False, status=Status.ERROR)])
    assert (summary.answered, summary.unanswered, summary.pass_rate) == (1, 0, 0.0)


def test_base_and_plus_are_scored_apart_for_evalplus_datasets() -> None:
    records = [
        record("a", True, True, base=(True, True)),
        record("b", False, False, base=(True, False)),
        record("c", False, False, base=(False, False)),
    ]
    summary = summarize(records)
    assert summary.pass_rate == pytest.approx(1 / 3) and summary.pass_at_k["pass@1"] == pytest.approx(1 / 3)
    assert summary.base is not None
    assert summary.base.passed == 2  # problems with a passing answer; the rate is pass@1 over the samples
    assert summary.base.pass_rate == pytest.approx(0.5) and summary.base.pass_at_k["pass@1"] == pytest.approx(0.5)
    assert "base tests" in report.format_summary(summary, "/run")
    assert summarize([record("a", True)]).base is None  # no base/plus split: no base score


def test_cached_problems_cost_is_saved_not_spent() -> None:
    summary = summarize([record("a", True, cost=0.5), record("b", True, cost=0.25, cached=True)])
    assert summary.cost.total == 0.5 and summary.saved_cost == 0.25 and summary.cached == 1
    assert summary.tokens == Tokens(input=100, output=10) and summary.saved_tokens == Tokens(input=100, output=10)
    assert "0.2500 USD saved" in report.format_summary(summary, "/run")


def test_iterative_runs_report_the_share_solved_within_i_iterations() -> None:
    records = [record("a", True, mode=Mode.ITERATIVE), record("b", False, True, mode=Mode.ITERATIVE)]
    records.append(record("c", False, False, False, mode=Mode.ITERATIVE))
    summary = summarize(records, mode=Mode.ITERATIVE)
    assert summary.solved_within == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert summary.pass_at_k == {} and summary.mean_attempts == 2.0


def test_comparative_runs_put_both_parts_side_by_side() -> None:
    records = [
        record("a", False, mode=Mode.ZERO_SHOT, cost=1.0),
        record("b", True, mode=Mode.ZERO_SHOT, cost=1.0),
        record("a", False, True, mode=Mode.ITERATIVE, cost=2.0),
        record("b", True, mode=Mode.ITERATIVE, cost=1.0),
    ]
    summary = summarize(records, mode=Mode.COMPARATIVE, selected=2)
    assert summary.pass_rate == 1.0 and summary.not_run == 0  # the headline is the iterative part
    assert summary.comparative is not None
    assert (summary.comparative.zero_shot.pass_rate, summary.comparative.iterative.pass_rate) == (0.5, 1.0)
    assert summary.comparative.improvement == 0.5 and summary.cost.total == 5.0
    text = report.format_summary(summary, "/run")
    assert "improvement" in text and "+50.0 points" in text


def test_an_interrupted_run_says_so_in_the_title() -> None:
    summary = summarize([record("a", True)], selected=3)
    summary.interrupted, summary.stopped_reason = True, "interrupted"
    text = report.format_summary(summary, "/run")
    assert "koderz results (INTERRUPTED)" in text and "2 of 3 problems (interrupted)" in text


def test_with_several_samples_the_headline_is_pass_at_1_not_any_sample() -> None:
    # 20 tasks, 20 samples each, every task solved by some sample: pass@1 0.85 and 0.57 must differ
    strong = [record(f"t{i}", *([True] * 17 + [False] * 3)) for i in range(20)]
    weak = [record(f"t{i}", *([True] * 11 + [False] * 9)) for i in range(20)]
    a, b = summarize(strong), summarize(weak)
    assert (a.passed, b.passed) == (20, 20)
    assert a.pass_rate == pytest.approx(0.85) and b.pass_rate == pytest.approx(0.55)
    assert a.pass_at_k["pass@1"] == pytest.approx(a.pass_rate) and a.samples_per_task == 20
    assert a.pass_rate_ci is not None and a.pass_rate_ci.method == "bootstrap"
    text = report.format_summary(a, "/run")
    first = next(line for line in text.splitlines() if line.startswith(("pass", "passed")))
    assert first.startswith("pass@1") and "0.850" in first and "100.0%" not in text
    assert "any sample passed" in text and "pass@20" in text


def test_every_pass_rate_carries_a_wilson_interval_with_one_sample_per_task() -> None:
    from scipy.stats import binomtest

    records = [record(f"t{i}", i < 7) for i in range(10)]
    summary = summarize(records)
    expected = binomtest(7, 10).proportion_ci(confidence_level=0.95, method="wilson")
    assert summary.pass_rate_ci is not None and summary.pass_rate_ci.method == "wilson"
    assert (summary.pass_rate_ci.low, summary.pass_rate_ci.high) == pytest.approx((expected.low, expected.high))
    assert f"{expected.low:.3f}-{expected.high:.3f}" in report.format_summary(summary, "/run")


def test_the_bootstrap_interval_is_seeded_and_holds_the_estimate() -> None:
    records = [record(f"t{i}", *([True] * (i % 4) + [False] * (4 - i % 4))) for i in range(30)]
    first, again = summarize(records), summarize(records)
    assert first.pass_rate_ci == again.pass_rate_ci
    assert first.pass_rate_ci is not None
    assert first.pass_rate_ci.low < first.pass_rate < first.pass_rate_ci.high


def test_comparative_runs_report_each_part_apart_nothing_pooled() -> None:
    records = [
        record("a", True, False, False, False, False, mode=Mode.ZERO_SHOT, cost=1.0),
        record("b", True, True, False, False, False, mode=Mode.ZERO_SHOT, cost=1.0),
        record("a", False, True, mode=Mode.ITERATIVE, cost=2.0),
        record("b", False, False, False, mode=Mode.ITERATIVE, cost=0.5),
    ]
    summary = summarize(records, mode=Mode.COMPARATIVE, selected=2)
    assert summary.comparative is not None
    zero, iterative = summary.comparative.zero_shot, summary.comparative.iterative
    assert zero.pass_rate == pytest.approx(0.3) and zero.pass_at_k["pass@5"] == pytest.approx(1.0)
    assert zero.ci is not None and zero.ci.method == "bootstrap" and (zero.cost, zero.passed) == (2.0, 2)
    assert iterative.pass_rate == 0.5 and iterative.pass_at_k == {} and iterative.cost == 2.5
    assert summary.pass_rate == 0.5 and summary.pass_at_k == {}  # the headline is the iterative part alone
    text = report.format_summary(summary, "/run")
    assert "zero_shot pass@1" in text and "zero_shot pass@5" in text and "iterative passed" in text


def test_recalled_specs_are_counted_with_the_runs_that_wrote_them() -> None:
    records = [record("a", True), record("b", True), record("c", False)]
    for r, source in zip(records[:2], ("run-1", "run-2"), strict=True):
        r.spec_reused, r.spec_from = True, source
    roles = Roles(coder="m", spec="m")
    summary = summarize(records, roles=roles)
    assert summary.memory.reuse and summary.memory.specs_recalled == 2
    assert summary.memory.spec_runs == ["run-1", "run-2"]
    assert summary.cost.by_phase["spec"] == 0.0  # no spec was paid for: 0, not missing
    assert "2 specs recalled from run-1, run-2" in report.format_summary(summary, "/run")
    off = summarize([record("a", True)], roles=roles, spec_reuse=False)
    assert not off.memory.reuse and "independent of earlier runs" in report.format_summary(off, "/run")


def test_mlflow_metrics_carry_the_interval_and_each_comparative_part_under_its_mode() -> None:
    from koderz.tracking.mlflow_tracker import summary_metrics

    records = [
        record("a", True, False, False, False, False, mode=Mode.ZERO_SHOT, cost=1.0),
        record("b", True, True, False, False, False, mode=Mode.ZERO_SHOT, cost=1.0),
        record("a", False, True, mode=Mode.ITERATIVE, cost=2.0),
        record("b", False, False, False, mode=Mode.ITERATIVE, cost=0.5),
    ]
    summary = summarize(records, mode=Mode.COMPARATIVE, selected=2, roles=Roles(coder="m", spec="m"))
    metrics = summary_metrics(summary)
    assert next(iter(metrics)) == "pass_rate"
    assert summary.pass_rate_ci is not None and metrics["pass_rate.ci_low"] == summary.pass_rate_ci.low
    assert metrics["zero_shot/pass_rate"] == pytest.approx(0.3) and metrics["zero_shot/pass_5"] == 1.0
    assert metrics["iterative/pass_rate"] == 0.5 and "iterative/pass_1" not in metrics
    assert (metrics["zero_shot/cost_usd"], metrics["iterative/cost_usd"]) == (2.0, 2.5)
    assert "pass_1" not in metrics  # (MLflow names: pass@k is pass_k) nothing pooled at the top level
    assert (
        metrics["cost.phase.spec"] == 0.0 and metrics["memory.reuse"] == 1.0 and metrics["memory.specs_recalled"] == 0
    )


def test_a_comparative_run_logs_each_part_to_mlflow_with_its_samples(tmp_path) -> None:
    import asyncio

    import mlflow

    from koderz.config import TrackingConfig
    from koderz.datasets.loaders import dataset_version
    from koderz.records import RunFolder
    from koderz.tracking.logger import log_run_folder
    from tests.conftest import run_job

    folder = tmp_path / "run"
    overrides = (
        "mode=comparative",
        "end=3",
        "n_samples=2",
        "max_iterations=2",
        "checkpoints.enabled=false",
        "tracking=off",
        "cortex=off",
    )
    asyncio.run(run_job(folder, *overrides))
    bare = RunFolder(folder)  # made without the run's parts, as a follower makes it
    assert {"samples.zero_shot.jsonl", "samples.iterative.jsonl"} <= {p.name for p in bare.artifact_paths}
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking = TrackingConfig(enabled=True, uri=uri, experiment="t", artifact_location=str(tmp_path / "art"))
    run_id = log_run_folder(folder, tracking)
    assert run_id is not None
    client = mlflow.MlflowClient(uri)
    metrics = client.get_run(run_id).data.metrics
    summary = bare.read_results().summary
    assert summary.comparative is not None
    assert metrics["zero_shot/pass_rate"] == summary.comparative.zero_shot.pass_rate
    assert metrics["iterative/pass_rate"] == summary.comparative.iterative.pass_rate == metrics["pass_rate"]
    assert "zero_shot/pass_1" in metrics and "zero_shot/pass_rate.ci_high" in metrics
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"samples.zero_shot.jsonl", "samples.iterative.jsonl"} <= names
    params = client.get_run(run_id).data.params
    assert params["spec.reuse"] == "true" and metrics["memory.reuse"] == 0.0  # cortex=off: nothing recalled
    inputs = client.get_run(run_id).inputs
    assert inputs is not None
    (given,) = inputs.dataset_inputs  # the dataset as an input: name and content digest
    assert given.dataset.name == "humaneval" and given.dataset.digest == dataset_version("humaneval")[:16]


def test_a_sweeps_swept_keys_become_params_of_its_parent() -> None:
    from koderz.tracking.mlflow_tracker import swept_params

    typed = "model=gpt-4o-mini,reference mode=zero_shot end=3 n_samples=range(1,3)"
    assert swept_params(typed) == {"sweep.model": "gpt-4o-mini,reference", "sweep.n_samples": "range(1,3)"}


def test_a_second_run_says_which_run_its_specs_came_from_and_spec_reuse_false_recalls_none(tmp_path) -> None:
    import asyncio

    from koderz.records import RunFolder
    from tests.conftest import run_job

    memory = ("cortex=local", f"cortex.db={tmp_path / 'cortex.db'}", "tracking=off", "cache=false", "end=2")
    first = asyncio.run(run_job(tmp_path / "first", *memory)).summary
    assert first.memory.reuse and first.memory.specs_recalled == 0
    second = asyncio.run(run_job(tmp_path / "second", *memory)).summary
    assert second.memory.specs_recalled == 2 and second.memory.spec_runs == [first.run_id]
    assert second.cost.by_phase["spec"] == 0.0
    results = RunFolder(tmp_path / "second").read_results()
    assert results.summary.memory == second.memory  # results.json carries it
    off = asyncio.run(run_job(tmp_path / "off", *memory, "spec.reuse=false")).summary
    assert not off.memory.reuse and off.memory.specs_recalled == 0


def test_the_live_headline_is_pass_at_1_too() -> None:
    from koderz.tracking.logger import live_metrics
    from koderz.tracking.names import Metric

    records = [record("a", True, False, False, False), record("b", True, True, True, True)]
    assert live_metrics(records, Mode.ZERO_SHOT)[Metric.PASS_RATE] == pytest.approx(summarize(records).pass_rate)
    assert live_metrics(records, Mode.ZERO_SHOT)[Metric.PASS_RATE] == pytest.approx(0.625)


def test_prefill_and_server_time_reach_mlflow_metrics() -> None:
    from koderz.records import RunTiming
    from koderz.tracking.mlflow_tracker import summary_metrics, timing_metrics

    summary = summarize([record("a", True, True, True, True)])
    summary.prefill_ignored, summary.prefill_continued = 3, False
    metrics = summary_metrics(summary)
    assert metrics["run.prefill_ignored"] == 3 and metrics["run.prefill_continued"] == 0.0
    timing = RunTiming(
        total_duration=20.0, tracked_wall=19.0, overhead=1.0, model_busy=15.0, sandbox_busy=2.0, model_server=12.5
    )
    assert timing_metrics(timing)["timing.model_server"] == 12.5
