"""Categories against chance (ARCHITECTURE.md 5b): expected and offered by hand, the deck fold, exact p-values."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest

from orienteer.core.chance import (
    ADJACENT_ANY,
    DECK,
    FINE,
    OTHER_180,
    WrongPick,
    chance_table,
    fold,
    key_order,
    members,
    poisson_binomial_p,
)
from orienteer.core.directions import Category
from orienteer.core.stats import holm


def test_an_item_with_three_wrong_options_one_horizontal_adds_a_third():
    table = chance_table([WrongPick(("horizontal", "orthogonal", "obtuse"), "orthogonal")])
    assert table["horizontal"].expected == pytest.approx(1 / 3)
    assert table["orthogonal"].expected == pytest.approx(1 / 3)
    assert table["obtuse"].expected == pytest.approx(1 / 3)
    assert table["horizontal"].observed == 0 and table["orthogonal"].observed == 1
    assert all(row.offered == 1 for row in table.values())
    assert sum(row.expected for row in table.values()) == pytest.approx(1.0)


def test_expected_offered_rate_and_ratio_over_several_items():
    picks = [
        WrongPick(("horizontal", "orthogonal", "orthogonal"), "horizontal", count=3),  # 1/3 h, 2/3 o each
        WrongPick(("orthogonal", "obtuse", "adjacent"), "orthogonal"),
        WrongPick(("horizontal",), "horizontal", count=2),  # two-choice items: the pick is certain
    ]
    t = chance_table(picks)
    assert t["horizontal"].observed == 5
    assert t["horizontal"].expected == pytest.approx(3 * (1 / 3) + 2 * 1)
    assert t["horizontal"].offered == 5
    assert t["horizontal"].rate_when_offered == pytest.approx(1.0)
    assert t["horizontal"].ratio == pytest.approx(5 / 3)
    assert t["orthogonal"].observed == 1
    assert t["orthogonal"].expected == pytest.approx(3 * (2 / 3) + 1 / 3)
    assert t["orthogonal"].offered == 4
    assert t["orthogonal"].rate_when_offered == pytest.approx(1 / 4)
    assert t["adjacent"].observed == 0 and t["adjacent"].ratio == 0.0
    assert "vertical" not in t  # never offered: not listed, never a structural zero shown as a finding
    assert sum(r.observed for r in t.values()) == 6
    assert sum(r.expected for r in t.values()) == pytest.approx(6)


def test_a_pick_must_be_among_the_offered_categories():
    with pytest.raises(ValueError, match="not among the offered"):
        chance_table([WrongPick(("orthogonal", "obtuse"), "horizontal")])
    with pytest.raises(ValueError, match="at least one wrong option"):
        chance_table([WrongPick((), "horizontal")])


def test_deck_grouping_folds_adjacent_obtuse_and_the_other_180_degree_errors():
    assert fold("adjacent", DECK) == fold("obtuse", DECK) == ADJACENT_ANY
    assert fold("depth", DECK) == fold("opposite", DECK) == OTHER_180
    for kept in ("horizontal", "vertical", "orthogonal", "same_direction", "non_directional", "unparsed"):
        assert fold(kept, DECK) == kept
    assert all(fold(c.value, FINE) == c.value for c in Category)
    assert members(ADJACENT_ANY) == ("adjacent", "obtuse")
    assert members(OTHER_180) == ("depth", "opposite")
    assert members("horizontal") == ("horizontal",)
    assert key_order(DECK)[:5] == ["horizontal", "vertical", "orthogonal", ADJACENT_ANY, OTHER_180]
    with pytest.raises(ValueError, match="unknown grouping"):
        fold("adjacent", "coarse")


def test_chance_figures_are_computed_on_the_grouping_shown():
    pick = WrongPick(("adjacent", "obtuse", "orthogonal"), "obtuse")
    deck = chance_table([pick], DECK)
    assert set(deck) == {ADJACENT_ANY, "orthogonal"}
    assert deck[ADJACENT_ANY].expected == pytest.approx(2 / 3)
    assert deck[ADJACENT_ANY].offered == 1 and deck[ADJACENT_ANY].observed == 1
    fine = chance_table([pick], FINE)
    assert fine["obtuse"].expected == pytest.approx(1 / 3)


def _binomial_two_sided(k: int, n: int, p: Fraction) -> float:
    pmf = [math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(n + 1)]
    return min(1.0, float(2 * min(sum(pmf[: k + 1]), sum(pmf[k:]))))


@pytest.mark.parametrize("k", [0, 3, 7, 12, 20])
def test_one_probability_is_the_doubled_binomial_tail(k):
    assert poisson_binomial_p(k, {(1, 3): 20}) == pytest.approx(_binomial_two_sided(k, 20, Fraction(1, 3)), rel=1e-12)


def test_mixed_probabilities_match_enumeration():
    probs = [Fraction(1, 3)] * 4 + [Fraction(2, 3)] * 3 + [Fraction(1, 2)] * 3 + [Fraction(1)] * 2
    pmf = [Fraction(0)] * (len(probs) + 1)
    for outcome in itertools.product((0, 1), repeat=len(probs)):
        weight = Fraction(1)
        for hit, p in zip(outcome, probs):
            weight *= p if hit else 1 - p
        pmf[sum(outcome)] += weight
    grouped = {(1, 3): 4, (2, 3): 3, (1, 2): 3, (2, 2): 2}
    for k in range(len(probs) + 1):
        want = min(1.0, float(2 * min(sum(pmf[: k + 1]), sum(pmf[k:]))))
        assert poisson_binomial_p(k, grouped) == pytest.approx(want, rel=1e-12, abs=1e-300)
    assert poisson_binomial_p(1, grouped) == 0.0  # fewer than the two certain picks: impossible


def test_far_tails_stay_exact_for_thousands_of_items():
    # 6,000 items, expectation 3,000: 2,000 observed is ~26 sd below; the tail is ~1e-150, not rounding noise
    p = poisson_binomial_p(2000, {(1, 3): 3000, (2, 3): 3000})
    assert 0 < p < 1e-100
    assert poisson_binomial_p(3000, {(1, 3): 3000, (4, 6): 3000}) > 0.9


def test_holm_corrects_within_the_table():
    picks = [WrongPick(("horizontal", "orthogonal", "obtuse"), "horizontal", count=40),
             WrongPick(("horizontal", "orthogonal", "obtuse"), "orthogonal", count=10)]
    t = chance_table(picks)
    raw = [t[k].p for k in t]
    assert [t[k].p_holm for k in t] == pytest.approx(holm(raw))
    assert t["horizontal"].significant and t["horizontal"].ratio == pytest.approx(40 / (50 / 3))
    assert t["obtuse"].observed == 0 and t["obtuse"].significant  # never picked when offered 50 times


def test_json_shape():
    row = chance_table([WrongPick(("horizontal", "orthogonal"), "horizontal")])["horizontal"]
    assert set(row.as_json()) == {"observed", "expected", "offered", "rate_when_offered", "ratio", "p", "p_holm"}
