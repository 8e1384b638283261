"""Wilson intervals, exact McNemar test, paired counts."""

from __future__ import annotations

import math
import time
from fractions import Fraction

import pytest

from orienteer.core import stats
from orienteer.core.stats import PairedCounts, mcnemar_exact, paired_counts, wilson_interval


def _exact_mcnemar(b: int, c: int) -> Fraction:
    """Reference: 2 * P(X <= min(b, c)), X ~ Binomial(b + c, 1/2), as an exact fraction."""
    n, k = b + c, min(b, c)
    if n == 0:
        return Fraction(1)
    return min(Fraction(1), Fraction(2 * sum(math.comb(n, i) for i in range(k + 1)), 2**n))


def test_wilson_known_values() -> None:
    low, high = wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    low, high = wilson_interval(50, 100)
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)


def test_wilson_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and 0.0 < high < 0.35
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and 0.65 < low < 1.0


def test_wilson_contains_estimate_and_narrows_with_n() -> None:
    previous_width = 1.0
    for n in (10, 100, 1000, 10000):
        low, high = wilson_interval(n * 3 // 10, n)
        assert 0.0 <= low <= 0.3 <= high <= 1.0
        assert high - low < previous_width
        previous_width = high - low


@pytest.mark.parametrize(("correct", "n"), [(-1, 10), (11, 10), (0, -1)])
def test_wilson_rejects_impossible_counts(correct: int, n: int) -> None:
    with pytest.raises(ValueError):
        wilson_interval(correct, n)


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [
        (0, 5, 0.0625),
        (5, 0, 0.0625),
        (1, 10, 0.01171875),
        (0, 0, 1.0),
        (3, 3, 1.0),
        (100, 100, 1.0),
        (4, 5, 1.0),
        (0, 1, 1.0),
        (2, 8, 0.109375),
    ],
)
def test_mcnemar_hand_values(b: int, c: int, expected: float) -> None:
    assert mcnemar_exact(b, c) == expected


def test_mcnemar_matches_exact_fractions_and_is_symmetric() -> None:
    for b, c in [(0, 3), (7, 19), (40, 61), (123, 200), (900, 1000), (950, 1050), (1200, 1500)]:
        expected = float(_exact_mcnemar(b, c))
        assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9)
        assert mcnemar_exact(c, b) == mcnemar_exact(b, c)


def test_mcnemar_large_n_path_matches_exact() -> None:
    # just past the integer path: the log-space path must agree with exact fractions
    n = stats._EXACT_MAX_N + 1
    for k in (n // 2, n // 2 - 30, n // 2 - 80, n // 3):
        expected = float(_exact_mcnemar(k, n - k))
        assert mcnemar_exact(k, n - k) == pytest.approx(expected, rel=1e-9)


def test_mcnemar_monotone_in_imbalance() -> None:
    n = 60
    values = [mcnemar_exact(k, n - k) for k in range(n // 2 + 1)]
    assert all(a <= b for a, b in zip(values, values[1:]))
    assert values[-1] == 1.0
    big = [mcnemar_exact(k, 100_000 - k) for k in range(49_000, 50_001, 100)]
    assert all(a <= b for a, b in zip(big, big[1:]))


def test_mcnemar_large_n_is_fast_and_sane() -> None:
    cases = [(50_000, 50_000), (49_900, 50_100), (49_000, 51_000), (0, 100_000), (30_000, 70_000)]
    start = time.perf_counter()
    values = [mcnemar_exact(b, c) for b, c in cases]
    elapsed = (time.perf_counter() - start) / len(cases)
    assert elapsed < 0.010
    assert values[0] == 1.0
    assert 0.5 < values[1] < 0.55  # z = 0.632 -> normal approximation about 0.527
    assert 1e-10 < values[2] < 1e-9  # z = 6.32 -> about 2.6e-10
    assert values[3] == 0.0  # 2 * 2**-100000 underflows
    assert all(0.0 <= v <= 1.0 for v in values)


def test_mcnemar_rejects_negative() -> None:
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def test_paired_counts() -> None:
    a = [True, True, False, False, True, False, True]
    b = [True, False, True, False, True, True, False]
    counts = paired_counts(a, b)
    assert counts == PairedCounts(both_right=2, fixed=2, broken=2, both_wrong=1)
    assert counts.n == 7
    assert counts.p_value == 1.0


def test_paired_counts_p_value_uses_discordant_cells() -> None:
    counts = paired_counts([False] * 10 + [True], [True] * 10 + [False])
    assert (counts.fixed, counts.broken) == (10, 1)
    assert counts.p_value == 0.01171875


def test_paired_counts_accepts_iterables_and_rejects_length_mismatch() -> None:
    counts = paired_counts((x % 2 == 0 for x in range(4)), iter([1, 1, 0, 0]))
    assert counts == PairedCounts(both_right=1, fixed=1, broken=1, both_wrong=1)
    with pytest.raises(ValueError):
        paired_counts([True, False], [True])


def test_paired_counts_is_frozen() -> None:
    counts = PairedCounts(1, 2, 3, 4)
    with pytest.raises(AttributeError):
        counts.fixed = 5  # type: ignore[misc]


def test_holm_on_a_known_vector():
    from orienteer.core.stats import holm

    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> kept monotone at 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []
    assert holm([0.2]) == [0.2]
    with pytest.raises(ValueError):
        holm([1.2])


def test_mcnemar_bounds_hold_the_exact_p():
    import random

    from orienteer.core.stats import mcnemar_bounds

    pairs = [(b, c) for b in range(0, 60) for c in range(0, 60)]
    rng = random.Random(5)
    pairs += [(rng.randint(0, 3000), rng.randint(0, 3000)) for _ in range(2000)]
    pairs += [(rng.randint(0, 300), rng.randint(1000, 3000)) for _ in range(500)]  # far tails
    for b, c in pairs:
        low, high = mcnemar_bounds(b, c)
        assert low <= mcnemar_exact(b, c) <= high, (b, c)
    # useful where it matters: above 0.05 at the centre, within 2x far out
    assert mcnemar_bounds(350, 350)[0] > 0.05
    low, high = mcnemar_bounds(200, 400)
    assert high < 2 * mcnemar_exact(200, 400) < 1e-14


def test_holm_rejects_decides_exactly_what_holm_does_with_few_exact_tails():
    import random

    from orienteer.core.stats import holm, holm_rejects, mcnemar_bounds

    rng = random.Random(9)
    for trial in range(60):
        size = rng.choice((5, 50, 400))
        spread = rng.choice((30, 400, 2000))
        cells = [(rng.randint(0, spread), rng.randint(0, spread)) for _ in range(rng.randint(1, size))]
        cells += cells[: rng.randint(0, 5)]  # ties
        exact = [mcnemar_exact(b, c) for b, c in cells]
        asked: list[int] = []

        def p_of(i: int) -> float:
            asked.append(i)
            return exact[i]

        bounds = [mcnemar_bounds(b, c) for b, c in cells]
        assert holm_rejects(bounds, p_of) == [p < 0.05 for p in holm(exact)], trial
        assert len(set(asked)) == len(asked)
        assert all(bounds[i][0] < 0.05 <= bounds[i][1] * len(cells) for i in asked)
