"""Statistics over repeated runs and over live traffic.

Runs: test accuracies over seeds are few (5-ish) and their variances need not be equal
between models, so intervals use Student's t, and differences Welch's unequal-variance
t-test (`python -m training repeat` prints them, the service's comparison serves them).
Live traffic (the prediction log): the accuracy of the labelled predictions with Wilson's
interval, and how far the predicted classes drift from the test set's (the population
stability index and Pearson's chi-square test).

In the neutral core, with mpmath's regularized incomplete beta and gamma functions (a
small pure-Python library) for Student's t and chi-square, so the serving image needs no SciPy.
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


def wilson_interval(successes: int, trials: int) -> tuple[float, float] | None:
    """Wilson's 95% score interval for a proportion: sound at small counts and at 0% or 100%,
    where the normal approximation collapses to a point. None without trials."""
    if trials == 0:
        return None
    z = 1.959963984540054  # The standard normal's 97.5% quantile.
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def population_stability_index(observed: Sequence[float], expected: Sequence[float], floor: float = 1e-4) -> float:
    """sum((o - e) * ln(o / e)) over the categories' shares (each floored, so an empty one is finite).
    The usual reading: below 0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a large one."""
    o = np.maximum(_shares(observed), floor)
    e = np.maximum(_shares(expected), floor)
    return float(np.sum((o - e) * np.log(o / e)))


def chi_square_test(observed_counts: Sequence[float], expected: Sequence[float]) -> tuple[float, float]:
    """Pearson's goodness of fit of the observed counts to the expected shares: (statistic, p-value),
    with k - 1 degrees of freedom over the k categories the expected distribution allows."""
    counts = np.asarray(observed_counts, dtype=np.float64)
    shares = _shares(expected)
    allowed = shares > 0
    if counts[~allowed].sum() > 0:
        return math.inf, 0.0  # A category the reference never has: no fit at all.
    wanted = counts.sum() * shares[allowed]
    statistic = float(np.sum((counts[allowed] - wanted) ** 2 / wanted))
    degrees = int(allowed.sum()) - 1
    return statistic, float(mpmath.gammainc(degrees / 2, statistic / 2, mpmath.inf, regularized=True))


def _shares(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    total = float(array.sum())
    if total <= 0:
        raise ValueError("no counts")
    shares: np.ndarray = array / total
    return shares
