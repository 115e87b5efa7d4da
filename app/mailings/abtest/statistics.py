"""How sure an A/B test can be: each variant's probability to be best, and a two-proportion test.

Plain functions of counts (no database), so they are tested on their own. A variant's rate of
success (recipients who opened, clicked or acted, over recipients sent) gets a Beta(1 + x,
1 + n - x) posterior — a uniform prior updated by the counts. The probability that variant i is
the best is the integral of its density times every other variant's distribution function,

    P(i best) = ∫ f_i(r) · Π_{j≠i} F_j(r) dr,

computed on a grid of GRID_POINTS midpoints spanning every posterior (12 standard deviations
either side), with the densities in log space so a million trials do not overflow. That is
deterministic (a report read twice never changes its mind), agrees with a Monte Carlo of the
same posteriors to about 0.002, and costs a few milliseconds for five variants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

GRID_POINTS = 2_000
SPREAD = 12  # standard deviations either side of each posterior's mean


@dataclass(frozen=True, slots=True)
class Comparison:
    """The leader against the runner-up: a pooled two-proportion z-test."""

    z: float
    p_value: float  # two-sided


def probabilities_to_be_best(
    successes: tuple[int, ...], trials: tuple[int, ...]
) -> tuple[float, ...]:
    """Return, for each variant, the probability that its true rate is the highest.

    The probabilities add up to 1.
    """
    if len(successes) != len(trials) or not successes:
        raise ValueError("one success count and one trial count per variant")
    for x, n in zip(successes, trials, strict=True):
        if n < 0 or x < 0 or x > n:
            raise ValueError(f"{x} successes out of {n} trials is not a count")
    return _probabilities(tuple(successes), tuple(trials))


def _span(posteriors: list[tuple[int, int]]) -> tuple[float, float]:
    low, high = 1.0, 0.0
    for a, b in posteriors:
        mean = a / (a + b)
        sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        low, high = min(low, mean - SPREAD * sd), max(high, mean + SPREAD * sd)
    return max(0.0, low), min(1.0, high)


@lru_cache(maxsize=512)
def _probabilities(successes: tuple[int, ...], trials: tuple[int, ...]) -> tuple[float, ...]:
    posteriors = [(1 + x, 1 + n - x) for x, n in zip(successes, trials, strict=True)]
    low, high = _span(posteriors)
    step = (high - low) / GRID_POINTS
    grid = [low + (i + 0.5) * step for i in range(GRID_POINTS)]
    log_r = [math.log(r) for r in grid]
    log_1_r = [math.log1p(-r) for r in grid]
    densities, distributions = [], []
    for a, b in posteriors:
        logs = [(a - 1) * p + (b - 1) * q for p, q in zip(log_r, log_1_r, strict=True)]
        top = max(logs)
        weights = [math.exp(v - top) for v in logs]
        total = sum(weights)
        density = [w / total for w in weights]  # probability mass of each grid cell
        distribution, below = [], 0.0
        for mass in density:
            distribution.append(below + mass / 2)  # F at the cell's midpoint
            below += mass
        densities.append(density)
        distributions.append(distribution)
    best = []
    for i, density in enumerate(densities):
        others = [d for j, d in enumerate(distributions) if j != i]
        total = 0.0
        for cell, mass in enumerate(density):
            if mass < 1e-15:
                continue
            for distribution in others:
                mass *= distribution[cell]
            total += mass
        best.append(total)
    whole = sum(best)
    return tuple(p / whole for p in best)


def two_proportion_test(x1: int, n1: int, x2: int, n2: int) -> Comparison | None:
    """Compare two rates with the pooled z-test; None when either side has no trials or the
    pooled rate is 0 or 1 (no variance to test against)."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance <= 0:
        return None
    z = (x1 / n1 - x2 / n2) / math.sqrt(variance)
    return Comparison(z=z, p_value=math.erfc(abs(z) / math.sqrt(2)))
