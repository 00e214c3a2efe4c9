"""The statistics behind every reported rate and comparison, in plain Python and numpy.

- ``wilson``: the Wilson score interval of a proportion (one sample per task).
- ``bootstrap_mean``: a percentile bootstrap over tasks of a mean of per-task values (several
  samples per task: the mean of per-task pass fractions is pass@1).
- ``paired_bootstrap``: the same for the mean of paired differences (two runs on the same tasks).
- ``mcnemar_exact``: McNemar's exact test: a two-sided binomial test on the discordant pairs.

Every bootstrap resamples tasks with a fixed seed, so a figure is the same on every run; the
level is 95% throughout. scipy is not needed (tests check these against ``scipy.stats``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from koderz.records import Interval
from koderz.vocab import IntervalMethod

LEVEL = 0.95
Z = 1.959963984540054  # the normal quantile of 0.975
RESAMPLES = 2000
SEED = 0


def wilson(passed: int, total: int) -> Interval:
    """The Wilson score interval of ``passed`` successes in ``total`` trials ([0, 1] when empty)."""
    if total <= 0:
        return Interval(low=0.0, high=1.0, method=IntervalMethod.WILSON)
    p = passed / total
    denominator = 1 + Z * Z / total
    centre = (p + Z * Z / (2 * total)) / denominator
    half = Z * math.sqrt(p * (1 - p) / total + Z * Z / (4 * total * total)) / denominator
    low = 0.0 if passed == 0 else max(0.0, centre - half)  # exact at the edges (no 0.9999999999999999)
    high = 1.0 if passed == total else min(1.0, centre + half)
    return Interval(low=low, high=high, method=IntervalMethod.WILSON)


def bootstrap_mean(values: Sequence[float], *, seed: int = SEED, resamples: int = RESAMPLES) -> Interval:
    """A percentile bootstrap interval of the mean of ``values`` (one value per task)."""
    low, high = _percentiles(_resampled_means(np.asarray(values, dtype=float), seed, resamples))
    return Interval(low=low, high=high, method=IntervalMethod.BOOTSTRAP)


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], *, seed: int = SEED, resamples: int = RESAMPLES
) -> Interval:
    """A percentile bootstrap interval of mean(b) - mean(a), resampling tasks (pairs) together."""
    differences = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    low, high = _percentiles(_resampled_means(differences, seed, resamples))
    return Interval(low=low, high=high, method=IntervalMethod.PAIRED_BOOTSTRAP)


def binomial_cdf(k: int, n: int, p: float = 0.5) -> float:
    """P(X <= k) for X ~ Binomial(n, p), exact (math.comb)."""
    if k < 0:
        return 0.0
    return math.fsum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(min(k, n) + 1))


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided p-value of McNemar's exact test: 2 * P(X <= min) for X ~ Binomial(a_only + b_only,
    1/2), capped at 1 (1 when there are no discordant pairs)."""
    discordant = a_only + b_only
    if discordant == 0:
        return 1.0
    return min(1.0, 2 * binomial_cdf(min(a_only, b_only), discordant))


def _resampled_means(values: np.ndarray, seed: int, resamples: int) -> np.ndarray:
    if values.size == 0:
        return np.zeros(1)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, values.size, size=(resamples, values.size))
    means: np.ndarray = values[picks].mean(axis=1)
    return means


def _percentiles(means: np.ndarray) -> tuple[float, float]:
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)
