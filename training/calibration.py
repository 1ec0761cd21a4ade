"""Honest probabilities: scores that say how calibrated a forward pass is, and temperature scaling.

Temperature scaling (Guo et al., 2017) divides the logits by one scalar T fitted by
minimising the negative log-likelihood on images the network never trained on; it
leaves the ranking of the classes, and so the accuracy, unchanged for a single view
or logit-averaged views. Everything here is NumPy on logits already computed, so
fitting and scoring are cheap; the served graph applies the same T in TensorFlow
(`training.core.forward.make_forward`).
"""

from __future__ import annotations

import math

import numpy as np

from training.core.preprocessing import TtaAverage
from training.core.records import ProbabilityScores

ECE_BINS = 15
TEMPERATURE_RANGE = (0.05, 20.0)


def combine(view_logits: np.ndarray, weights: np.ndarray, temperature: float, average: TtaAverage) -> np.ndarray:
    """Probabilities from every view's logits (views, N, C), as the served graph combines them."""
    if average is TtaAverage.LOGITS:
        return softmax(np.tensordot(weights, view_logits, axes=1) / temperature)
    return np.tensordot(weights, softmax(view_logits / temperature), axes=1)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return np.asarray(exponentials / exponentials.sum(axis=-1, keepdims=True))


def fit_temperature(view_logits: np.ndarray, weights: np.ndarray, labels: np.ndarray, average: TtaAverage) -> float:
    """The T in TEMPERATURE_RANGE minimising NLL: golden-section search on log T (NLL is unimodal in it)."""
    logits64 = view_logits.astype(np.float64)

    def loss(log_t: float) -> float:
        return negative_log_likelihood(combine(logits64, weights.astype(np.float64), math.exp(log_t), average), labels)

    low, high = (math.log(bound) for bound in TEMPERATURE_RANGE)
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):  # Shrinks the bracket by 0.618^60: far below float32 resolution.
        left, right = high - ratio * (high - low), low + ratio * (high - low)
        if loss(left) < loss(right):
            high = right
        else:
            low = left
    return math.exp((low + high) / 2)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by the bins' sizes."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for index in range(bins):
        members = which == index
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def brier_score(probabilities: np.ndarray, labels: np.ndarray) -> float:
    one_hot = np.eye(probabilities.shape[1])[labels]
    return float(((probabilities - one_hot) ** 2).sum(axis=1).mean())


def scores(probabilities: np.ndarray, labels: np.ndarray) -> ProbabilityScores:
    return ProbabilityScores(
        ece=expected_calibration_error(probabilities, labels),
        nll=negative_log_likelihood(probabilities, labels),
        brier=brier_score(probabilities, labels),
        mean_confidence=float(probabilities.max(axis=1).mean()),
        accuracy=float((probabilities.argmax(axis=1) == labels).mean()),
    )


def reliability_curve(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> list[tuple[float, float, int]]:
    """(mean confidence, accuracy, count) per non-empty bin, for the reliability diagram."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    return [
        (float(confidence[which == b].mean()), float(correct[which == b].mean()), int((which == b).sum()))
        for b in range(bins)
        if (which == b).any()
    ]
