"""Every statistic against an independent computation (scipy.stats, numpy, or by hand)."""

import math

import numpy as np
import pytest
import scipy.stats
from scipy import stats as sps

from sweeplab.pipelines.reporting import stats
from sweeplab.pipelines.reporting.stats import adjust_pvalues, compare, describe


@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_describe_matches_scipy(confidence):
    x = np.array([1.2, 0.7, 2.5, 1.9, 1.1])
    d = describe(x, confidence)
    lo, hi = sps.t.interval(confidence, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert d.n == 5 and d.n_nonfinite == 0
    assert d.mean == pytest.approx(x.mean())
    assert d.std == pytest.approx(np.std(x, ddof=1))
    assert d.sem == pytest.approx(sps.sem(x))
    assert (d.ci_lower, d.ci_upper) == pytest.approx((lo, hi))
    assert (d.median, d.min, d.max) == (1.2, 0.7, 2.5)


def test_describe_excludes_and_counts_non_finite_values():
    d = describe([1.0, np.nan, 3.0, np.inf, -np.inf])
    assert d.n == 2 and d.n_nonfinite == 3
    lo, hi = sps.t.interval(0.95, 1, loc=2.0, scale=sps.sem([1.0, 3.0]))
    assert (d.mean, d.ci_lower, d.ci_upper) == pytest.approx((2.0, lo, hi))


def test_describe_small_samples_have_no_interval():
    one = describe([4.0])
    assert one.n == 1 and one.mean == 4.0 and one.median == 4.0
    assert all(math.isnan(v) for v in (one.std, one.sem, one.ci_lower, one.ci_upper)), "never zero-width"
    none = describe([np.nan])
    assert none.n == 0 and none.n_nonfinite == 1 and math.isnan(none.mean)
    assert describe([]).n == 0
    two = describe([1.0, 2.0])
    assert two.ci_upper - two.ci_lower == pytest.approx(2 * sps.t.ppf(0.975, 1) * 0.5)


def test_paired_when_the_same_seeds_completed():
    a = {0: 1.0, 1: 1.4, 2: 0.9, 3: 1.3}
    b = {0: 0.8, 1: 1.1, 2: 0.85, 3: 0.9}
    c = compare(a, b)
    ref = sps.ttest_rel(list(a.values()), list(b.values()))
    diff = np.array(list(a.values())) - np.array(list(b.values()))
    assert c.test == "paired t" and c.df == 3
    assert (c.statistic, c.pvalue) == pytest.approx((ref.statistic, ref.pvalue))
    assert c.effect_size == pytest.approx(diff.mean() / diff.std(ddof=1))


def test_paired_order_follows_seeds_not_insertion():
    a = {0: 1.0, 1: 2.0, 2: 4.0}
    b = {2: 3.0, 0: 0.5, 1: 1.9}
    ref = sps.ttest_rel([1.0, 2.0, 4.0], [0.5, 1.9, 3.0])
    assert compare(a, b).pvalue == pytest.approx(ref.pvalue)


def test_welch_when_seeds_differ_or_one_failed():
    a = {0: 1.0, 1: 1.4, 2: 0.9, 3: 1.3}
    b = {0: 0.8, 1: 1.1, 2: np.nan, 3: 0.9}  # seed 2 non-finite: not the same seeds any more
    c = compare(a, b)
    xa, xb = np.array([1.0, 1.4, 0.9, 1.3]), np.array([0.8, 1.1, 0.9])
    ref = sps.ttest_ind(xa, xb, equal_var=False)
    assert c.test == "Welch t" and (c.n_a, c.n_b) == (4, 3)
    assert (c.statistic, c.pvalue, c.df) == pytest.approx((ref.statistic, ref.pvalue, ref.df))
    d = (xa.mean() - xb.mean()) / np.sqrt((xa.var(ddof=1) + xb.var(ddof=1)) / 2)
    assert c.effect_size == pytest.approx(d)


def test_no_test_below_two_values():
    c = compare({0: 1.0}, {0: 2.0, 1: 3.0})
    assert c.test == "none (n < 2)" and math.isnan(c.pvalue) and c.mean_diff == pytest.approx(-1.5)


def test_holm_and_bonferroni_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06
    assert adjust_pvalues(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjust_pvalues(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.02])
    assert adjust_pvalues(p, "none") == pytest.approx(p)
    assert adjust_pvalues([0.5, 0.6], "holm") == pytest.approx([1.0, 1.0])


def test_untested_pairs_do_not_count_in_the_family():
    adjusted = adjust_pvalues([0.01, np.nan, 0.02], "holm")
    assert math.isnan(adjusted[1])
    assert adjusted[[0, 2]] == pytest.approx([0.02, 0.02])
    with pytest.raises(ValueError, match="correction must be one of"):
        adjust_pvalues([0.1], "fdr")


# ----------------------------------------------------------------------------------------------
# bootstrap differences, probability of improvement, aggregates, power: against references


def test_the_bootstrap_difference_is_scipys_paired_or_not_and_seeded():
    a, b = {0: 1.0, 1: 2.0, 2: 4.0, 3: 3.5}, {0: 0.5, 1: 1.8, 2: 2.0, 3: 3.0}
    got = stats.bootstrap_difference(a, b, 0.9, n_resamples=999, seed=3)
    reference = scipy.stats.bootstrap((np.array(list(a.values())), np.array(list(b.values()))),
                                      lambda x, y, axis: x.mean(axis) - y.mean(axis), paired=True,
                                      confidence_level=0.9, n_resamples=999, method="percentile",
                                      rng=np.random.default_rng(3)).confidence_interval
    assert got.paired and got.mean_diff == pytest.approx(0.8)
    assert (got.ci_lower, got.ci_upper) == pytest.approx((reference.low, reference.high))
    assert stats.bootstrap_difference(a, b, 0.9, seed=3) == stats.bootstrap_difference(a, b, 0.9, seed=3)
    unpaired = stats.bootstrap_difference(a, {7: 0.0, 8: 1.0}, 0.9)
    assert not unpaired.paired and unpaired.ci_lower < unpaired.mean_diff < unpaired.ci_upper
    assert np.isnan(stats.bootstrap_difference({0: 1.0}, {0: 2.0}).ci_lower)


def test_the_probability_of_improvement_is_the_mann_whitney_u_over_the_pairs():
    x, y = [0.2, 0.5, 0.5, 0.9], [0.5, 0.7, 0.1]
    u = scipy.stats.mannwhitneyu(x, y).statistic  # counts x > y, ties half
    assert stats.probability_of_improvement(x, y, "max") == pytest.approx(u / 12)
    assert stats.probability_of_improvement(x, y, "min") == pytest.approx(1 - u / 12)
    assert stats.probability_of_improvement([1.0], [float("nan")]) != stats.probability_of_improvement([1.0], [1.0])


def test_the_interquartile_mean_and_its_stratified_interval():
    assert stats.interquartile_mean([1, 2, 3, 4, 100, 5, 6, 7]) == pytest.approx(scipy.stats.trim_mean(
        [1, 2, 3, 4, 100, 5, 6, 7], 0.25))
    tasks = [np.array([0.1, 0.2, 0.3, 9.0]), np.array([1.0, 1.1, 1.2, 1.3]), np.array([0.5, 0.6, 0.4, 0.5])]
    got = stats.stratified_iqm(tasks, 0.95, n_resamples=500, seed=1)
    assert got.iqm == pytest.approx(scipy.stats.trim_mean(np.concatenate(tasks), 0.25))
    assert got.ci_lower <= got.iqm <= got.ci_upper and (got.n_runs, got.n_tasks) == (4, 3)
    # stratified: every resample keeps four runs of each task, so a task's level never vanishes
    reference = scipy.stats.bootstrap(tuple(tasks), lambda *t, axis: scipy.stats.trim_mean(
        np.concatenate(t, axis=axis), 0.25, axis=axis), confidence_level=0.95, n_resamples=500,
        method="percentile", rng=np.random.default_rng(1)).confidence_interval
    assert (got.ci_lower, got.ci_upper) == pytest.approx((reference.low, reference.high))


@pytest.mark.parametrize(("effect", "seeds"), [(1.0, 17), (0.5, 64), (2.0, 6)])
def test_seeds_needed_match_the_textbook_table(effect, seeds):
    """Cohen (1988), Table 2.4.1, two-sided alpha 0.05, power 0.80: d = 0.5 needs 64 a group,
    d = 1.0 needs 17 (G*Power gives the same); d = 2.0 needs 6."""
    assert stats.seeds_needed(effect, 0.05, 0.8) == seeds
    assert stats.t_test_power(seeds, effect) >= 0.8 > stats.t_test_power(seeds - 1, effect)


def test_the_minimum_detectable_difference_inverts_the_power():
    d = stats.minimum_detectable(17)
    assert stats.t_test_power(17, d) == pytest.approx(0.8) and 0.9 < d < 1.0
    assert np.isnan(stats.minimum_detectable(1))
