"""Temperature scaling and the probability scores, against hand computations and known answers."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import (
    brier_score,
    combine,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    softmax,
)
from training.core.preprocessing import TtaAverage


def test_the_fitted_temperature_recovers_the_one_that_generated_the_labels() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (20_000, 10))
    labels = np.array([rng.choice(10, p=row) for row in softmax(logits / 2.0)])
    fitted = fit_temperature(logits[None], np.ones(1), labels, TtaAverage.LOGITS)
    assert fitted == pytest.approx(2.0, rel=0.05)


def test_fitting_lowers_the_nll_it_minimises() -> None:
    rng = np.random.default_rng(1)
    views = rng.normal(0, 5, (2, 500, 10))
    labels = np.array([rng.choice(10, p=row) for row in softmax(views.mean(axis=0) / 3.0)])  # Overconfident views.
    weights = np.array([0.5, 0.5])
    for average in TtaAverage:
        fitted = fit_temperature(views, weights, labels, average)
        best = negative_log_likelihood(combine(views, weights, fitted, average), labels)
        assert 1.0 < fitted < 20.0
        for other in (fitted * 0.8, fitted * 1.25, 1.0):
            assert best <= negative_log_likelihood(combine(views, weights, other, average), labels) + 1e-9


def test_ece_by_hand() -> None:
    # Two confident-and-right (0.95), two hesitant (0.55) of which one is right.
    probabilities = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.45, 0.55]])
    labels = np.array([0, 0, 0, 0])
    # Bin of 0.95: accuracy 1, confidence 0.95 -> 0.05; bin of 0.55: accuracy 0.5, confidence 0.55 -> 0.05.
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.05)


def test_brier_and_nll_by_hand() -> None:
    probabilities = np.array([[0.5, 0.5], [1.0, 0.0]])
    labels = np.array([0, 0])
    assert brier_score(probabilities, labels) == pytest.approx((0.25 + 0.25 + 0.0) / 2)
    assert negative_log_likelihood(probabilities, labels) == pytest.approx(-np.log(0.5) / 2)


def test_averaging_logits_and_probabilities_differ_only_with_several_views() -> None:
    views = np.random.default_rng(2).normal(0, 3, (1, 4, 10))
    one_view = [combine(views, np.ones(1), 1.5, average) for average in TtaAverage]
    assert one_view[0] == pytest.approx(one_view[1])
