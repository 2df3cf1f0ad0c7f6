"""Statistics across seeds: descriptive summaries with t intervals, pairwise tests,
multiple-comparison corrections. Pure functions of arrays; scipy.stats does the maths.

Conventions, stated once:

- ``std`` is the sample standard deviation (``ddof=1``), not numpy's default ``ddof=0``;
  ``sem = std / sqrt(n)``.
- The confidence interval of the mean is ``mean +/- t_{(1+c)/2, n-1} * sem``, Student's t
  with ``n - 1`` degrees of freedom. With ``n < 2`` there is no interval (NaN), never a
  zero-width one.
- Non-finite values (NaN, +/-inf) are excluded from every statistic and counted.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np


@functools.cache
def _sps() -> Any:
    """scipy.stats, imported on first use: it takes over a second, and a one-seed sweep
    needs no interval and no test."""
    from scipy import stats  # noqa: PLC0415

    return stats

Correction = Literal["holm", "bonferroni", "none"]


@dataclass(frozen=True)
class Description:
    n: int  # finite values used
    n_nonfinite: int  # values excluded as NaN or infinite
    mean: float
    std: float  # ddof=1
    sem: float
    ci_lower: float
    ci_upper: float
    median: float
    min: float
    max: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def describe(values, confidence: float = 0.95) -> Description:
    """Mean, sample std, SEM, t interval, median, min, max of the finite ``values``."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = np.asarray(values, dtype=float).ravel()
    finite = x[np.isfinite(x)]
    n, nan = len(finite), float("nan")
    if n == 0:
        return Description(0, len(x), nan, nan, nan, nan, nan, nan, nan, nan)
    mean = float(finite.mean())
    std = float(finite.std(ddof=1)) if n >= 2 else nan
    sem = std / np.sqrt(n) if n >= 2 else nan
    half = float(_sps().t.ppf((1 + confidence) / 2, n - 1) * sem) if n >= 2 else nan
    return Description(n, len(x) - n, mean, std, sem, mean - half, mean + half,
                       float(np.median(finite)), float(finite.min()), float(finite.max()))


@dataclass(frozen=True)
class Comparison:
    test: str  # "paired t" | "Welch t" | "none (n < 2)"
    n_a: int
    n_b: int
    mean_diff: float  # mean(a) - mean(b)
    statistic: float
    df: float
    pvalue: float
    effect_size: float  # Cohen's d_z (paired) or d with the average variance (Welch)

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def compare(a: dict[int, float], b: dict[int, float]) -> Comparison:
    """Two conditions' values keyed by seed: a paired t-test when the same seeds have finite
    values in both (and n >= 2), else Welch's t-test, else no test.

    Effect sizes: paired, ``d_z = mean(a - b) / std(a - b)``; unpaired,
    ``d = (mean a - mean b) / sqrt((var a + var b) / 2)``, both with ``ddof=1``.
    """
    fa = {s: v for s, v in a.items() if np.isfinite(v)}
    fb = {s: v for s, v in b.items() if np.isfinite(v)}
    xa, xb = np.array(list(fa.values())), np.array(list(fb.values()))
    nan = float("nan")
    diff = float(xa.mean() - xb.mean()) if len(xa) and len(xb) else nan
    if set(fa) == set(fb) and len(fa) >= 2:
        seeds = sorted(fa)
        pa, pb = np.array([fa[s] for s in seeds]), np.array([fb[s] for s in seeds])
        d = pa - pb
        result = _sps().ttest_rel(pa, pb)
        sd = d.std(ddof=1)
        effect = float(d.mean() / sd) if sd > 0 else _signed_inf(d.mean())
        return Comparison("paired t", len(pa), len(pb), diff, float(result.statistic), float(len(d) - 1),
                          float(result.pvalue), effect)
    if len(xa) >= 2 and len(xb) >= 2:
        result = _sps().ttest_ind(xa, xb, equal_var=False)
        va, vb = xa.var(ddof=1), xb.var(ddof=1)
        pooled = np.sqrt((va + vb) / 2)
        effect = float(diff / pooled) if pooled > 0 else _signed_inf(diff)
        return Comparison("Welch t", len(xa), len(xb), diff, float(result.statistic), float(result.df),
                          float(result.pvalue), effect)
    return Comparison("none (n < 2)", len(xa), len(xb), diff, nan, nan, nan, nan)


def _signed_inf(x: float) -> float:
    return float("nan") if x == 0 else float(np.sign(x) * np.inf)


def adjust_pvalues(pvalues, method: Correction = "holm") -> np.ndarray:
    """Family-wise corrected p-values; NaN entries (no test) stay NaN and do not count.

    Bonferroni: ``min(1, m p)``. Holm's step-down: sort ascending, multiply the k-th smallest
    by ``m - k + 1``, make the sequence non-decreasing, cap at 1. ``m`` is the number of tests.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    m = len(tested)
    if m == 0:
        return out
    if method == "none":
        out[tested] = p[tested]
    elif method == "bonferroni":
        out[tested] = np.minimum(1.0, p[tested] * m)
    elif method == "holm":
        order = tested[np.argsort(p[tested], kind="stable")]
        scaled = p[order] * (m - np.arange(m))
        out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    else:
        raise ValueError(f"correction must be one of holm, bonferroni, none; got {method!r}")
    return out


# ----------------------------------------------------------------------------------------------
# effect sizes, intervals without normality, aggregates over tasks, power

N_RESAMPLES = 2000  # bootstrap resamples: a 95% percentile interval's ends move by well under a tenth of its width


@dataclass(frozen=True)
class Difference:
    """``mean(a) - mean(b)`` with a bootstrap percentile interval: seeds resampled together
    when both sides hold the same seeds (``paired``), else each side on its own."""

    mean_diff: float
    ci_lower: float
    ci_upper: float
    paired: bool


def _mean_difference(a, b, axis=-1):
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def bootstrap_difference(a: dict[int, float], b: dict[int, float], confidence: float = 0.95,
                         n_resamples: int = N_RESAMPLES, seed: int = 0) -> Difference:
    """The mean difference of two conditions' values (keyed by seed) with a bootstrap interval
    (``scipy.stats.bootstrap``, percentile method, seeded). No interval below two values a side."""
    fa = {s: v for s, v in a.items() if np.isfinite(v)}
    fb = {s: v for s, v in b.items() if np.isfinite(v)}
    nan = float("nan")
    if not fa or not fb:
        return Difference(nan, nan, nan, False)
    paired = set(fa) == set(fb) and len(fa) >= 2
    seeds = sorted(fa)
    xa = np.array([fa[s] for s in seeds]) if paired else np.array(list(fa.values()))
    xb = np.array([fb[s] for s in seeds]) if paired else np.array(list(fb.values()))
    diff = float(xa.mean() - xb.mean())
    if len(xa) < 2 or len(xb) < 2:
        return Difference(diff, nan, nan, paired)
    result = _sps().bootstrap((xa, xb), _mean_difference, paired=paired, vectorized=True, method="percentile",
                              confidence_level=confidence, n_resamples=n_resamples,
                              rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return Difference(diff, float(low), float(high), paired)


def probability_of_improvement(a, b, direction: Literal["min", "max"] = "min") -> float:
    """P(a run of A beats a run of B), over every pair of their finite values, ties counting
    half (Agarwal et al. 2021): ``(#(x better than y) + #(x == y) / 2) / (n_a n_b)``, the
    Mann-Whitney U of A over B divided by ``n_a n_b``. NaN when a side has no value."""
    x, y = (np.asarray(list(v), dtype=float) for v in (a, b))
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if not len(x) or not len(y):
        return float("nan")
    if direction == "min":
        x, y = -x, -y
    wins = (x[:, None] > y[None, :]).sum() + 0.5 * (x[:, None] == y[None, :]).sum()
    return float(wins / (len(x) * len(y)))


def interquartile_mean(values) -> float:
    """The mean of the middle half of the finite values (``scipy.stats.trim_mean(x, 0.25)``):
    robust to one diverged run, less noisy than the median."""
    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    return float(_sps().trim_mean(x, 0.25)) if len(x) else float("nan")


@dataclass(frozen=True)
class Aggregate:
    """An interquartile mean over runs x tasks with a stratified bootstrap interval."""

    iqm: float
    ci_lower: float
    ci_upper: float
    n_runs: int
    n_tasks: int


def _pooled_iqm(*tasks, axis=-1):
    return _sps().trim_mean(np.concatenate(tasks, axis=axis), 0.25, axis=axis)


def stratified_iqm(tasks: list, confidence: float = 0.95, n_resamples: int = N_RESAMPLES, seed: int = 0) -> Aggregate:
    """The IQM of every score of every task (each task: its runs' finite scores), with a
    bootstrap interval that resamples runs within each task (stratified: every resample
    keeps each task's count), as ``scipy.stats.bootstrap`` does with one sample per task."""
    samples = [x[np.isfinite(x)] for x in (np.asarray(t, dtype=float).ravel() for t in tasks)]
    samples = [x for x in samples if len(x)]
    nan = float("nan")
    if not samples:
        return Aggregate(nan, nan, nan, 0, 0)
    point = interquartile_mean(np.concatenate(samples))
    runs = max(len(x) for x in samples)
    if min(len(x) for x in samples) < 2:  # a task with one score cannot be resampled
        return Aggregate(point, nan, nan, runs, len(samples))
    result = _sps().bootstrap(tuple(samples), _pooled_iqm, paired=False, vectorized=True, method="percentile",
                              confidence_level=confidence, n_resamples=n_resamples,
                              rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return Aggregate(point, float(low), float(high), runs, len(samples))


def t_test_power(n: int, effect: float, alpha: float = 0.05) -> float:
    """The power of a two-sided two-sample t-test with ``n`` runs a side to detect a difference
    of ``effect`` standard deviations: ``P(|T| > t_{1-alpha/2, 2n-2})`` with T noncentral t,
    noncentrality ``effect * sqrt(n / 2)``."""
    if n < 2:
        return float("nan")
    df = 2 * n - 2
    critical = _sps().t.ppf(1 - alpha / 2, df)
    shift = effect * np.sqrt(n / 2)
    return float(_sps().nct.sf(critical, df, shift) + _sps().nct.cdf(-critical, df, shift))


def seeds_needed(effect: float, alpha: float = 0.05, power: float = 0.8, most: int = 10_000) -> int | None:
    """The fewest runs a side at which that test reaches ``power`` (None past ``most``)."""
    n = 2
    while t_test_power(n, effect, alpha) < power:
        n += 1
        if n > most:
            return None
    return n


def minimum_detectable(n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest difference, in standard deviations, that the test detects with ``power``
    at ``n`` runs a side (NaN below 2)."""
    if n < 2:
        return float("nan")
    from scipy.optimize import brentq  # noqa: PLC0415

    high = 1.0
    while t_test_power(n, high, alpha) < power:  # bracket it: the noncentral t is NaN far out
        high *= 2
    return float(brentq(lambda d: t_test_power(n, d, alpha) - power, 1e-6, high))
