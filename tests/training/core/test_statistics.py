"""Spread and Welch's t, checked against SciPy's own t-test and interval functions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from training.core.statistics import spread, t_quantile, t_tail, welch

MODEL_1 = [0.6080, 0.6312, 0.6190, 0.6255, 0.6011]
MODEL_2 = [0.4800, 0.4655, 0.4902, 0.4713, 0.4870]


def test_spread_matches_the_t_interval() -> None:
    result = spread(MODEL_1)
    low, high = stats.t.interval(0.95, len(MODEL_1) - 1, loc=np.mean(MODEL_1), scale=stats.sem(MODEL_1))
    assert (result.n, result.mean, result.sd) == (
        5,
        pytest.approx(np.mean(MODEL_1)),
        pytest.approx(np.std(MODEL_1, ddof=1)),
    )
    assert (result.ci_low, result.ci_high) == (pytest.approx(low), pytest.approx(high))


def test_a_single_run_has_no_interval() -> None:
    assert spread([0.6]).ci_low is None and spread([0.6]).sd == 0.0
    with pytest.raises(ValueError):
        spread([])


def test_welch_matches_scipys_unequal_variance_t_test() -> None:
    ours = welch(MODEL_2, MODEL_1)
    reference = stats.ttest_ind(MODEL_2, MODEL_1, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert ours.mean == pytest.approx(np.mean(MODEL_2) - np.mean(MODEL_1))
    assert ours.p_value == pytest.approx(reference.pvalue)
    assert (ours.ci_low, ours.ci_high) == (pytest.approx(interval.low), pytest.approx(interval.high))
    assert ours.significant and ours.mean < 0


def test_overlapping_samples_are_not_significant() -> None:
    assert not welch([0.60, 0.62, 0.61], [0.61, 0.60, 0.63]).significant


@pytest.mark.parametrize("degrees", [1, 2, 4, 7.3, 30, 1000])
def test_students_t_matches_scipys(degrees: float) -> None:
    assert t_quantile(0.975, degrees) == pytest.approx(stats.t.ppf(0.975, degrees), rel=1e-10)
    for t in (0.0, 0.7, 2.1, 9.0):
        assert t_tail(t, degrees) == pytest.approx(stats.t.sf(t, degrees), rel=1e-9, abs=1e-15)


def test_a_probability_outside_the_upper_half_is_refused() -> None:
    with pytest.raises(ValueError, match="not in"):
        t_quantile(0.4, 3)
