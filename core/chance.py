"""Error categories read against chance: what a uniform wrong pick would give on the same items.

ARCHITECTURE.md section 5b. The option sets decide which categories a wrong pick *can* fall
into: on ViewSpatial-Bench a model that picks a wrong option at random already makes mostly
Orthogonal and Obtuse errors, and few items even offer the mirror of the gold label. So every
category count is set against its expectation over the *same* answered-wrong items:

* ``observed[c]``: wrong picks in c;
* ``expected[c]``: sum over the items of (wrong options in c) / (wrong options);
* ``offered[c]``: items offering at least one wrong option in c;
* ``p[c]``: observed against the per-item Poisson-binomial distribution (two-sided: twice the
  smaller tail, capped at 1), Holm-corrected across the categories of one table.

The Poisson-binomial is computed exactly here: no well-kept library ships it (scipy has none;
the ``poibin`` package is unmaintained). Items share few distinct probabilities (k/m with
m <= 7 wrong options), so the distribution is the convolution of one binomial per distinct
probability, which numpy convolves exactly (FFT beyond a few thousand items, whose rounding
error, about 1e-15, is far below any threshold a p-value is read at).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from orienteer.core.directions import Category
from orienteer.core.stats import holm

FINE = "fine"
DECK = "deck"
GROUPINGS: tuple[str, ...] = (FINE, DECK)

ADJACENT_ANY = "adjacent_any"
OTHER_180 = "other_180"
DECK_GROUPS: dict[str, tuple[Category, ...]] = {
    Category.HORIZONTAL.value: (Category.HORIZONTAL,),
    Category.VERTICAL.value: (Category.VERTICAL,),
    Category.ORTHOGONAL.value: (Category.ORTHOGONAL,),
    ADJACENT_ANY: (Category.ADJACENT, Category.OBTUSE),
    OTHER_180: (Category.DEPTH, Category.OPPOSITE),
}
"""The deck grouping: the four error types of the research (Horizontal, Vertical flip, Orthogonal,
Adjacent = any angle other than 90 or 180 degrees) plus the other 180-degree confusions. Keys
that mean the same as a fine category keep its key; the two that merge get keys of their own,
so a key never means two things."""

DECK_DISPLAY: dict[str, str] = {
    ADJACENT_ANY: "Adjacent (not 90/180)",
    OTHER_180: "Other 180 (F<->B, opp.)",
}
_TO_DECK: dict[str, str] = {c.value: key for key, members in DECK_GROUPS.items() for c in members}

EXPECTED_MEANS = "expected = wrong picks if each item's wrong option were drawn uniformly from its wrong options"
"""One line for every table that shows ``expected``."""

_DIRECT_MAX = 16384
"""Up to this many random items per binomial they are convolved directly (exact to the last bit,
tails of 1e-300 included; 0.1 s at the limit), beyond it by FFT."""


def fold(category: str, grouping: str = FINE) -> str:
    """The key ``category`` (a fine category value) counts under in ``grouping``.

    Categories the deck grouping does not name (same direction, non-directional, unparsed,
    invalid option) keep their own key in both groupings.
    """
    if grouping == FINE:
        return category
    if grouping == DECK:
        return _TO_DECK.get(category, category)
    raise ValueError(f"unknown grouping {grouping!r} (expected {' or '.join(GROUPINGS)})")


def members(key: str) -> tuple[str, ...]:
    """The fine category values a key of either grouping stands for (what a filter on it matches)."""
    group = DECK_GROUPS.get(key)
    return tuple(c.value for c in group) if group else (key,)


def check_grouping(grouping: str) -> str:
    if grouping not in GROUPINGS:
        raise ValueError(f"unknown grouping {grouping!r} (expected {' or '.join(GROUPINGS)})")
    return grouping


@dataclass(frozen=True)
class WrongPick:
    """Items answered with a wrong option, all alike: the categories of their wrong options and the pick's.

    ``offered`` has one entry per wrong option of the item (so its length is the number of wrong
    options); ``count`` identical items can share one record.
    """

    offered: tuple[str, ...]
    picked: str
    count: int = 1


@dataclass(frozen=True)
class ChanceRow:
    """One category of a table read against chance (section 5b)."""

    observed: int
    expected: float
    offered: int
    p: float
    p_holm: float = 1.0

    @property
    def rate_when_offered(self) -> float | None:
        return self.observed / self.offered if self.offered else None

    @property
    def ratio(self) -> float | None:
        return self.observed / self.expected if self.expected > 0 else None

    @property
    def significant(self) -> bool:
        return self.p_holm < 0.05

    def as_json(self) -> dict[str, float | int | None]:
        return {"observed": self.observed, "expected": self.expected, "offered": self.offered,
                "rate_when_offered": self.rate_when_offered, "ratio": self.ratio, "p": self.p, "p_holm": self.p_holm}


@dataclass(frozen=True)
class OfferCount:
    """``items`` answered-wrong items whose wrong options put ``k`` of ``m`` in ``key``; ``picked`` of
    them picked one of those k. What the chance table is computed from (a database can count it)."""

    key: str
    k: int
    m: int
    items: int
    picked: int


def count_offers(picks: Iterable[WrongPick], grouping: str = FINE) -> list[OfferCount]:
    """Fold item records into ``OfferCount`` rows of ``grouping`` (the database does this in SQL)."""
    check_grouping(grouping)
    counts: dict[tuple[str, int, int], list[int]] = defaultdict(lambda: [0, 0])
    for pick in picks:
        if pick.count <= 0:
            continue
        m = len(pick.offered)
        if m == 0:
            raise ValueError(f"a wrong pick needs at least one wrong option, got {pick!r}")
        per_key: dict[str, int] = defaultdict(int)
        for category in pick.offered:
            per_key[fold(category, grouping)] += 1
        picked = fold(pick.picked, grouping)
        if picked not in per_key:
            raise ValueError(f"picked category {pick.picked!r} is not among the offered ones {pick.offered!r}")
        for key, k in per_key.items():
            cell = counts[(key, k, m)]
            cell[0] += pick.count
            cell[1] += pick.count if key == picked else 0
    return [OfferCount(key, k, m, items, hit) for (key, k, m), (items, hit) in counts.items()]


def chance_table(picks: Iterable[WrongPick], grouping: str = FINE) -> dict[str, ChanceRow]:
    """Observed, expected and offered per category key, with Poisson-binomial p-values, Holm-corrected.

    Keys are those of ``grouping``; a category is listed when some item offered it. Items with a
    single wrong option (two-choice items) count too: their pick is certain, which the
    distribution carries (probability 1), so they move ``observed`` and ``expected`` alike.
    """
    return chance_from_counts(count_offers(picks, grouping), grouping)


def chance_from_counts(counts: Iterable[OfferCount], grouping: str = FINE) -> dict[str, ChanceRow]:
    """The chance table from ``OfferCount`` rows (see ``chance_table``)."""
    observed: dict[str, int] = defaultdict(int)
    offered: dict[str, int] = defaultdict(int)
    # per key: how many items give each probability k/m of a pick in it, keyed (k, m)
    probabilities: dict[str, dict[tuple[int, int], int]] = defaultdict(lambda: defaultdict(int))
    for c in counts:
        observed[c.key] += c.picked
        offered[c.key] += c.items
        probabilities[c.key][(c.k, c.m)] += c.items
    order = key_order(grouping)
    keys = sorted(offered, key=lambda key: (order.index(key) if key in order else len(order), key))
    raw = {key: poisson_binomial_p(observed[key], probabilities[key]) for key in keys}
    adjusted = dict(zip(keys, holm([raw[k] for k in keys])))
    return {
        key: ChanceRow(observed=observed[key], expected=math.fsum(k / m * n for (k, m), n in probabilities[key].items()),
                       offered=offered[key], p=raw[key], p_holm=adjusted[key])
        for key in keys
    }


def key_order(grouping: str) -> list[str]:
    """Display order of a grouping's keys: geometric types first, then the non-geometric ones."""
    fine = [c.value for c in Category]
    if check_grouping(grouping) == FINE:
        return fine
    return [*DECK_GROUPS, *(c for c in fine if c not in _TO_DECK)]


def poisson_binomial_p(observed: int, probabilities: dict[tuple[int, int], int]) -> float:
    """Two-sided p of ``observed`` successes among independent trials: ``n`` trials of probability
    ``k / m`` per ``(k, m): n`` entry.

    Twice the smaller tail (P(X <= observed) or P(X >= observed)), capped at 1: the usual
    two-sided exact test, which for one probability is the binomial test's "doubled tail" form.
    """
    import numpy as np

    by_p: dict[float, int] = defaultdict(int)  # (1, 3) and (2, 6) are one binomial
    certain = 0
    for (k, m), n in probabilities.items():
        if k == m:
            certain += n
        elif 0 < k < m and n > 0:
            by_p[k / m] += n
    random = list(by_p.items())
    top = certain + sum(n for _, n in random)
    if not certain <= observed <= top:
        return 0.0
    pmf = np.ones(1)
    for p, n in random:
        pmf = _convolve(pmf, _binomial_pmf(n, p))
    pmf = np.clip(pmf, 0.0, None)
    k = observed - certain
    lower = float(pmf[: k + 1].sum())
    upper = float(pmf[k:].sum())
    return min(1.0, 2.0 * min(lower, upper))


def _binomial_pmf(n: int, p: float):  # numpy arrays: numpy is imported lazily here
    """Binomial(n, p) probabilities for 0..n, from log-gamma (no overflow for any n)."""
    import numpy as np

    log_p, log_q = math.log(p), math.log1p(-p)
    lg_n = math.lgamma(n + 1)
    return np.exp(np.array([lg_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q
                            for k in range(n + 1)]))


def _convolve(a, b):  # numpy arrays, as above
    import numpy as np

    if min(len(a), len(b)) <= _DIRECT_MAX:
        return np.convolve(a, b)
    size = len(a) + len(b) - 1
    return np.fft.irfft(np.fft.rfft(a, size) * np.fft.rfft(b, size), size)
