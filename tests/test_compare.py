"""Paired comparisons: the statistics against scipy.stats on known tables, the pairing of two run
folders (flips, exclusions, pass@k), refusals, the CLI and a sweep's comparisons in MLflow."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from koderz import stats
from koderz.compare.__main__ import main
from koderz.compare.pairing import Run, compare
from koderz.records import AttemptOutcome, ProblemRecord, RunFolder
from koderz.vocab import Mode, Status

TABLES = [(0, 0), (0, 1), (1, 0), (3, 11), (11, 3), (5, 5), (0, 20), (40, 55), (7, 1)]


@pytest.mark.parametrize(("a_only", "b_only"), TABLES)
def test_mcnemar_exact_is_scipys_two_sided_binomial_test_on_the_discordant_pairs(a_only: int, b_only: int) -> None:
    n = a_only + b_only
    expected = 1.0 if n == 0 else scipy_stats.binomtest(a_only, n, 0.5).pvalue
    assert stats.mcnemar_exact(a_only, b_only) == pytest.approx(expected, rel=1e-9)
    if n:
        doubled = min(1.0, 2 * scipy_stats.binom.cdf(min(a_only, b_only), n, 0.5))
        assert stats.mcnemar_exact(a_only, b_only) == pytest.approx(doubled, rel=1e-9)


@pytest.mark.parametrize(("k", "n"), [(0, 1), (3, 10), (10, 10), (81, 164), (0, 0), (17, 20)])
def test_wilson_is_scipys_wilson_interval(k: int, n: int) -> None:
    interval = stats.wilson(k, n)
    if n == 0:
        assert (interval.low, interval.high) == (0.0, 1.0)
        return
    expected = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert (interval.low, interval.high) == pytest.approx((expected.low, expected.high), abs=1e-12)
    assert stats.binomial_cdf(k, n) == pytest.approx(scipy_stats.binom.cdf(k, n, 0.5), rel=1e-9)


def test_the_paired_bootstrap_is_seeded_and_agrees_with_scipys() -> None:
    rng = np.random.default_rng(7)
    a = rng.random(200) < 0.6
    b = np.where(rng.random(200) < 0.8, a, ~a)  # mostly the same tasks pass
    ours = stats.paired_bootstrap(a.tolist(), b.tolist())
    assert ours == stats.paired_bootstrap(a.tolist(), b.tolist())
    theirs = scipy_stats.bootstrap(
        (b.astype(float) - a.astype(float),), np.mean, method="percentile", n_resamples=4000, random_state=1
    ).confidence_interval
    assert ours.low == pytest.approx(theirs.low, abs=0.02) and ours.high == pytest.approx(theirs.high, abs=0.02)
    assert ours.low <= float(np.mean(b) - np.mean(a)) <= ours.high


def make_run(
    path: Path,
    outcomes: dict[str, list[bool] | None],
    *,
    dataset: str = "humaneval",
    protocol: str = "koderz",
    mode: Mode = Mode.ZERO_SHOT,
    tracking: dict[str, object] | None = None,
) -> Path:
    """A run folder with one record per task: its verdicts per sample, None for no verdict."""
    folder = RunFolder(path, parts=mode.spec.parts)
    config: dict[str, object] = {
        "model": {"name": path.name},
        "dataset": {"name": dataset},
        "mode": {"name": mode.value},
        "prompt": {"protocol": protocol},
        "tracking": tracking or {"enabled": False},
    }
    folder.path.mkdir(parents=True)
    folder.write_config(config)
    records = []
    for task, verdicts in outcomes.items():
        if verdicts is None:
            records.append(ProblemRecord(task_id=task, mode=mode, status=Status.MODEL_ERROR))
            continue
        records.append(
            ProblemRecord(
                task_id=task,
                mode=mode,
                status=Status.PASSED if any(verdicts) else Status.FAILED,
                passed=any(verdicts),
                attempts=len(verdicts),
                outcomes=[
                    AttemptOutcome(index=i, status=Status.PASSED if ok else Status.FAILED, passed=ok)
                    for i, ok in enumerate(verdicts)
                ],
            )
        )
    folder.write_all(records, [], {}, [])
    return folder.path


def known_pair(tmp_path: Path) -> tuple[Path, Path]:
    """10 tasks: both pass t0-t3, A only t4, B only t5-t7, neither t8; t9 has no verdict in B."""
    a = {f"t{i}": [i in (0, 1, 2, 3, 4, 9)] for i in range(10)}
    b: dict[str, list[bool] | None] = {f"t{i}": [i in (0, 1, 2, 3, 5, 6, 7)] for i in range(9)}
    b["t9"] = None
    return make_run(tmp_path / "a", dict(a)), make_run(tmp_path / "b", b)


def test_two_runs_are_paired_task_by_task(tmp_path: Path) -> None:
    a, b = known_pair(tmp_path)
    result = compare(Run.read(a), Run.read(b))
    assert result.tasks == 9 and result.excluded == ["t9"]  # no verdict in B: neither a pass nor a fail
    assert (result.a_only, result.b_only, result.both, result.neither) == (1, 3, 4, 1)
    assert result.a_only_tasks == ["t4"] and result.b_only_tasks == ["t5", "t6", "t7"]
    assert result.difference == pytest.approx(7 / 9 - 5 / 9)
    assert result.mcnemar_p == pytest.approx(scipy_stats.binomtest(1, 4, 0.5).pvalue)
    assert result.ci_low <= result.difference <= result.ci_high
    wilson = scipy_stats.binomtest(5, 9).proportion_ci(method="wilson")
    assert (result.a.ci.low, result.a.ci.high) == pytest.approx((wilson.low, wilson.high))


def test_several_samples_compare_pass_at_1_and_pass_at_k_with_a_paired_bootstrap(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    a = {f"t{i}": (rng.random(5) < 0.4).tolist() for i in range(30)}
    b = {f"t{i}": (rng.random(5) < 0.6).tolist() for i in range(30)}
    result = compare(Run.read(make_run(tmp_path / "a", a)), Run.read(make_run(tmp_path / "b", b)))
    share = [sum(v) / 5 for v in b.values()], [sum(v) / 5 for v in a.values()]
    assert result.difference == pytest.approx(np.mean(share[0]) - np.mean(share[1]))
    assert result.a.ci.method == "bootstrap" and result.a.samples_per_task == 5
    (row,) = result.pass_at_k
    expected_b = np.mean([1 - math.comb(5 - sum(v), 5) / math.comb(5, 5) for v in b.values()])
    assert row.k == "pass@5" and row.b == pytest.approx(expected_b)
    assert row.ci_low <= row.difference <= row.ci_high


def test_cli_json_has_the_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = known_pair(tmp_path)
    assert main([str(a), str(b), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert {"difference", "ci_low", "ci_high", "mcnemar_p", "a_only", "b_only"} <= set(figures)
    assert figures["b_only_tasks"] == ["t5", "t6", "t7"]
    assert main([str(a), str(b)]) == 0
    text = capsys.readouterr().out
    assert "McNemar exact p" in text and "passed in B only: t5, t6, t7" in text


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"dataset": "mbpp_plus"}, "different task sets"),
        ({"protocol": "evalplus"}, "different protocols"),
        ({"tasks": 9}, "different task sets"),
    ],
)
def test_runs_that_do_not_measure_the_same_thing_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, object], said: str
) -> None:
    a = make_run(tmp_path / "a", {f"t{i}": [True] for i in range(10)})
    tasks = int(str(change.get("tasks", 10)))
    other = {k: str(v) for k, v in change.items() if k != "tasks"}
    b = make_run(tmp_path / "b", {f"t{i}": [False] for i in range(tasks)}, **other)  # type: ignore[arg-type]
    assert main([str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and said in err


def test_a_folder_that_is_not_a_run_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, _ = known_pair(tmp_path)
    assert main([str(a), str(tmp_path / "missing")]) == 2
    assert "not a koderz run folder" in capsys.readouterr().err


def test_a_sweep_compares_every_job_with_the_baseline_and_logs_on_its_parent_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    parent = client.create_run(client.create_experiment("sweep", artifact_location=str(tmp_path / "art"))).info
    sweep = tmp_path / "sweep"
    tracking = {"enabled": True, "uri": uri, "experiment": "sweep"}
    for job, passing in enumerate([3, 6, 8]):
        make_run(sweep / f"{job}_model=m{job}", {f"t{i}": [i < passing] for i in range(10)}, tracking=tracking)
    (sweep / "mlflow_parent_run_id").write_text(parent.run_id)
    assert main([str(sweep), "--baseline", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["baseline"].endswith("1_model=m1")
    assert [c["difference"] for c in out["comparisons"]] == pytest.approx([-0.3, 0.2])
    metrics = client.get_run(parent.run_id).data.metrics
    # metric names keep what MLflow allows: "=" becomes "_"
    assert metrics["compare/0_model_m0/difference"] == pytest.approx(-0.3)
    assert metrics["compare/2_model_m2/b_only"] == 2.0
    assert "comparisons.json" in {a.path for a in client.list_artifacts(parent.run_id)}
    assert main([str(sweep), "--baseline", "7"]) == 2
    assert "--baseline=7: no such job" in capsys.readouterr().err
