"""Statistics for accuracies and paired run comparisons (standard library only).

Wilson intervals stay inside [0, 1] and behave at 0 % and 100 %, which per-category
accuracies on small slices often are. McNemar's exact test compares two runs on the same
items, the only fair test when both runs answered the same questions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Z_95 = 1.959963984540054
"""Two-sided 95 % normal quantile."""

_EXACT_MAX_N = 200
"""Up to this many discordant pairs the McNemar tail is summed with exact integers."""

_BERRY_ESSEEN = 0.4748
"""Shevtsova's (2011) constant for i.i.d. sums: sup |F_n - Phi| <= C rho / (sigma^3 sqrt(n))."""


def wilson_interval(correct: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for `correct` successes out of `n`; (0, 1) when n == 0."""
    if n < 0 or not 0 <= correct <= n:
        raise ValueError(f"need 0 <= correct <= n, got correct={correct}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n)) / denom
    # at 0 % and 100 % the bound is exactly 0 or 1; floats would leave 0.9999999999999999
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    high = 1.0 if correct == n else min(1.0, centre + half)
    return (low, high)


def _lower_tail_exact(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), correctly rounded (integer sum / 2**n)."""
    term, total = 1, 1
    for i in range(k):
        term = term * (n - i) // (i + 1)
        total += term
    return total / (1 << n)


def _lower_tail_log(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), k <= n/2, for large n.

    Starts from the largest term C(n, k) / 2**n (via lgamma) and walks down with the ratio
    C(n, i-1) / C(n, i) = i / (n - i + 1), stopping once terms no longer change the sum.
    Relative error ~1e-10 at n = 100,000; a few thousand steps at most.
    """
    log_top = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2)
    rel, total = 1.0, 1.0
    for i in range(k, 0, -1):
        rel *= i / (n - i + 1)
        total += rel
        if rel < 1e-17 * total:
            break
    return math.exp(log_top + math.log(total))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for discordant counts b and c.

    The binomial test of min(b, c) against Binomial(b + c, 1/2), doubled and capped at 1.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = _lower_tail_exact(k, n) if n <= _EXACT_MAX_N else _lower_tail_log(k, n)
    return min(1.0, 2.0 * tail)


def mcnemar_bounds(b: int, c: int) -> tuple[float, float]:
    """Bounds ``(low, high)`` on ``mcnemar_exact(b, c)`` in constant time, for screening many tests at once.

    Low: under the null the smaller count is Binomial(n, 1/2), whose CDF is within C / sqrt(n) of
    the normal one (Berry-Esseen; rho / sigma^3 = 1 for a fair coin), so p >= 2 (Phi(z) - C / sqrt(n)).
    High: the tail's terms shrink by a ratio that only falls further from the centre, so it is at
    most its largest term C(n, k) / 2^n over (1 - that first ratio). Loose near the centre, where p
    is large anyway; tight far from it, where p is tiny.
    """
    n = b + c
    if n == 0:
        return (1.0, 1.0)
    k = min(b, c)
    z = (k - n / 2) / (math.sqrt(n) / 2)
    phi = 0.5 * math.erfc(-z / math.sqrt(2.0))
    low = max(0.0, min(1.0, 2.0 * (phi - _BERRY_ESSEEN / math.sqrt(n))) - 1e-12)
    ratio = k / (n - k + 1)
    if ratio >= 1.0:
        return (low, 1.0)
    log_top = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2)
    high = min(1.0, 2.0 * math.exp(log_top) / (1.0 - ratio) * (1 + 1e-9))
    return (low, high)


@dataclass(frozen=True)
class PairedCounts:
    """Run A vs run B on the same items: the 2x2 table McNemar's test reads."""

    both_right: int
    fixed: int  # A wrong, B right
    broken: int  # A right, B wrong
    both_wrong: int

    @property
    def n(self) -> int:
        """Number of paired items."""
        return self.both_right + self.fixed + self.broken + self.both_wrong

    @property
    def p_value(self) -> float:
        """Exact McNemar p-value for 'A and B are equally accurate'."""
        return mcnemar_exact(self.broken, self.fixed)


def paired_counts(a: Iterable[bool], b: Iterable[bool]) -> PairedCounts:
    """Tally per-item correctness of two runs, aligned item by item (lengths must match)."""
    table = [[0, 0], [0, 0]]  # table[a_right][b_right]
    for right_a, right_b in zip(a, b, strict=True):
        table[bool(right_a)][bool(right_b)] += 1
    return PairedCounts(
        both_right=table[1][1], fixed=table[0][1], broken=table[1][0], both_wrong=table[0][0]
    )


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    A family of m tests, sorted by p ascending: the i-th (0-based) smallest is multiplied by
    (m - i), the running maximum keeps the adjusted values monotone, and each is capped at 1.
    An adjusted p below alpha rejects exactly the hypotheses Holm's step-down procedure rejects
    at alpha, with the family-wise error rate held at alpha under any dependence.
    Ten lines of arithmetic: statsmodels' ``multipletests`` does the same but would add a large
    dependency for it.
    """
    m = len(p_values)
    for p in p_values:
        if not 0.0 <= p <= 1.0 or p != p:
            raise ValueError(f"p-values must lie in [0, 1], got {p!r}")
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def holm_rejects(bounds: Sequence[tuple[float, float]], exact: Callable[[int], float], alpha: float = 0.05) -> list[bool]:
    """Which of m tests Holm rejects at ``alpha`` (``holm(p)[i] < alpha``), exact p computed only where needed.

    ``bounds[i]`` is ``(low, high)`` around test i's p. A test with high * m < alpha is rejected
    at any rank, and ranks before every test that fails; one with low >= alpha is never rejected,
    and ranks after every test that passes. Only the rest need their exact p, and the step-down
    over them, after the sure ones, decides exactly what ``holm`` would. A table of thousands of
    McNemar cells thus costs the exact tails of its few borderline cells.
    """
    m = len(bounds)
    rejected = [high * m < alpha for _, high in bounds]
    sure = sum(rejected)
    exact_p = {i: exact(i) for i, (low, high) in enumerate(bounds) if low < alpha and not high * m < alpha}
    for rank, i in enumerate(sorted(exact_p, key=lambda i: (exact_p[i], i)), start=sure):
        if (m - rank) * exact_p[i] >= alpha:
            break
        rejected[i] = True
    return rejected
