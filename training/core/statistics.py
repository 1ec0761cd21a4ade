"""Statistics over repeated runs: spread with a 95% confidence interval, and Welch's t for differences.

Test accuracies over seeds are few (5-ish) and their variances need not be equal between
models, so intervals use Student's t, and differences Welch's unequal-variance t-test.
In the neutral core: `python -m training repeat` prints them, the service's comparison
serves them. Student's t comes from mpmath's regularized incomplete beta function, a
small pure-Python library (the quantile by bisection on it), so the serving image needs no SciPy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import mpmath
import numpy as np

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Spread:
    n: int
    mean: float
    sd: float  # Sample standard deviation (n - 1); 0 for a single run.
    ci_low: float | None  # 95% interval of the mean; None for a single run.
    ci_high: float | None


@dataclass(frozen=True)
class Difference:
    """a - b, with Welch's 95% interval and two-sided p-value."""

    mean: float
    ci_low: float
    ci_high: float
    degrees_of_freedom: float
    p_value: float
    method: str = "Welch's t-test (unequal variances)"

    @property
    def significant(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0


def spread(values: Sequence[float]) -> Spread:
    data = np.asarray(values, dtype=np.float64)
    n = len(data)
    if n == 0:
        raise ValueError("no values")
    mean = float(data.mean())
    if n == 1:
        return Spread(1, mean, 0.0, None, None)
    sd = float(data.std(ddof=1))
    half = t_quantile((1 + CONFIDENCE) / 2, n - 1) * sd / math.sqrt(n)
    return Spread(n, mean, sd, mean - half, mean + half)


def welch(a: Sequence[float], b: Sequence[float]) -> Difference:
    """Needs at least two values on each side."""
    first, second = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(first) < 2 or len(second) < 2:
        raise ValueError("Welch's t needs at least two runs on each side")
    variance_a, variance_b = first.var(ddof=1) / len(first), second.var(ddof=1) / len(second)
    standard_error = math.sqrt(variance_a + variance_b)
    difference = float(first.mean() - second.mean())
    if standard_error == 0:
        return Difference(difference, difference, difference, math.inf, 0.0 if difference else 1.0)
    degrees = (variance_a + variance_b) ** 2 / (variance_a**2 / (len(first) - 1) + variance_b**2 / (len(second) - 1))
    half = t_quantile((1 + CONFIDENCE) / 2, degrees) * standard_error
    p_value = 2 * t_tail(abs(difference) / standard_error, degrees)
    return Difference(difference, difference - half, difference + half, float(degrees), p_value)


def t_tail(t: float, degrees: float) -> float:
    """P(T > t) for Student's t with `degrees` degrees of freedom, t >= 0: I_x(df/2, 1/2) / 2, x = df/(df+t^2)."""
    x = degrees / (degrees + t * t)
    return float(mpmath.betainc(degrees / 2, 0.5, 0, x, regularized=True)) / 2


def t_quantile(probability: float, degrees: float) -> float:
    """The t with P(T <= t) = probability (above one half): bisection on the tail, which falls with t."""
    if not 0.5 < probability < 1:
        raise ValueError(f"probability {probability} is not in (0.5, 1)")
    tail = 1 - probability
    low, high = 0.0, 1.0
    while t_tail(high, degrees) > tail:
        low, high = high, 2 * high
    while high - low > 1e-12 * high:
        middle = (low + high) / 2
        low, high = (middle, high) if t_tail(middle, degrees) > tail else (low, middle)
    return (low + high) / 2
