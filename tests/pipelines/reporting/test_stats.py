"""Every statistic against an independent computation (scipy.stats, numpy, or by hand)."""

import math

import numpy as np
import pytest
from scipy import stats as sps

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
