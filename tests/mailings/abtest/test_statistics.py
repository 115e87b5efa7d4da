"""The A/B test's arithmetic: probabilities to be best and the two-proportion z-test."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.mailings.abtest.statistics import probabilities_to_be_best, two_proportion_test


@st.composite
def counts(draw, min_variants=2, max_variants=5):
    variants = draw(st.integers(min_variants, max_variants))
    trials = draw(st.lists(st.integers(0, 5_000), min_size=variants, max_size=variants))
    successes = [draw(st.integers(0, n)) for n in trials]
    return tuple(successes), tuple(trials)


@settings(max_examples=40, deadline=None)
@given(counts())
def test_probabilities_are_a_distribution_and_repeatable(drawn):
    successes, trials = drawn
    probabilities = probabilities_to_be_best(successes, trials)
    assert len(probabilities) == len(trials)
    assert all(0 <= p <= 1 for p in probabilities)
    assert math.isclose(sum(probabilities), 1.0)
    assert probabilities_to_be_best(successes, trials) == probabilities


def _monte_carlo(successes, trials, draws=40_000):
    """The same question answered by brute force: draw from every posterior, count wins."""
    generator = random.Random(7)
    posteriors = [(1 + x, 1 + n - x) for x, n in zip(successes, trials, strict=True)]
    wins = [0] * len(posteriors)
    for _ in range(draws):
        values = [generator.betavariate(a, b) for a, b in posteriors]
        wins[values.index(max(values))] += 1
    return [w / draws for w in wins]


@settings(max_examples=12, deadline=None)
@given(counts(max_variants=4))
def test_the_integral_agrees_with_brute_force_sampling(drawn):
    successes, trials = drawn
    exact = probabilities_to_be_best(successes, trials)
    sampled = _monte_carlo(successes, trials)
    # 40,000 draws: a standard error of at most 0.0025 per probability.
    assert all(abs(e - s) < 0.015 for e, s in zip(exact, sampled, strict=True)), (exact, sampled)


@settings(max_examples=30, deadline=None)
@given(st.integers(50, 5_000), st.data())
def test_a_clearly_higher_rate_is_almost_surely_best(n, data):
    low = data.draw(st.integers(0, n // 10))
    high = low + n // 5  # 20 points higher
    probabilities = probabilities_to_be_best((low, high), (n, n))
    assert probabilities[1] > 0.99


def test_equal_evidence_gives_equal_chances():
    probabilities = probabilities_to_be_best((30, 30, 30), (300, 300, 300))
    assert all(abs(p - 1 / 3) < 1e-9 for p in probabilities)


def test_more_evidence_makes_the_same_lead_surer():
    small = probabilities_to_be_best((5, 7), (100, 100))
    large = probabilities_to_be_best((500, 700), (10_000, 10_000))
    assert 0.5 < small[1] < 0.9 < large[1]


def test_bad_counts_are_refused():
    with pytest.raises(ValueError):
        probabilities_to_be_best((5, 11), (10, 10))
    with pytest.raises(ValueError):
        probabilities_to_be_best((1,), (10, 10))
    with pytest.raises(ValueError):
        probabilities_to_be_best((), ())


def test_two_proportion_test_matches_the_textbook_figures():
    # 5 % of 1,000 against 7 % of 1,000: pooled 6 %, se 0.010621, z -1.883, p 0.0597.
    comparison = two_proportion_test(50, 1000, 70, 1000)
    assert comparison.z == pytest.approx(-1.8831, abs=1e-4)
    assert comparison.p_value == pytest.approx(0.0597, abs=1e-4)
    assert two_proportion_test(70, 1000, 50, 1000).p_value == pytest.approx(comparison.p_value)


def test_two_proportion_test_without_variance_says_nothing():
    assert two_proportion_test(0, 100, 0, 100) is None
    assert two_proportion_test(100, 100, 100, 100) is None
    assert two_proportion_test(1, 0, 1, 10) is None
