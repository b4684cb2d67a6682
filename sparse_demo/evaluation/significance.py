"""Paired significance of one system against a baseline: randomization test, bootstrap CI, Holm.

* :func:`paired_randomization_test`: two-sided sign-flip test of the mean per-query difference
  (exact enumeration when ``2**n <= trials``, else Monte Carlo).
* :func:`bootstrap_ci`: percentile bootstrap 95% interval of the mean difference.
* :func:`holm_adjust`: Holm-Bonferroni step-down adjusted p-values across systems.

Example:
    >>> holm_adjust([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Sign vectors enumerated exactly up to this many queries (2**16 = 65,536 vectors).
MAX_EXACT_QUERIES = 16


@dataclass(frozen=True)
class SignificanceResult:
    """A paired randomization test on per-query values (e.g. reciprocal ranks).

    Attributes:
        mean_a: mean of system A (the baseline).
        mean_b: mean of system B.
        difference: ``mean_b - mean_a``.
        p_value: two-sided p-value.
        num_queries: pairs compared.
        trials: random sign flips drawn (``2**n`` when exact).
        exact: True when every sign vector was enumerated.
    """

    mean_a: float
    mean_b: float
    difference: float
    p_value: float
    num_queries: int
    trials: int
    exact: bool = False

    @property
    def significant(self) -> bool:
        """True when ``p_value < 0.05``."""
        return self.p_value < 0.05

    @property
    def floor(self) -> float:
        """The smallest p-value this test can return (``2 / 2**n`` exact, ``1 / (trials + 1)`` Monte Carlo)."""
        if self.exact:
            return 2.0 / (2**self.num_queries) if self.num_queries else 1.0
        return 1.0 / (self.trials + 1)


def _pair(values_a: Sequence[float], values_b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(values_a, dtype=np.float64)
    b = np.asarray(values_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"values must be two 1-D sequences of equal length, got {a.shape} and {b.shape}")
    return a, b


def paired_randomization_test(
    values_a: Sequence[float], values_b: Sequence[float], *, trials: int = 10_000, seed: int = 0
) -> SignificanceResult:
    """Two-sided paired randomization (sign-flip) test of ``mean(b) - mean(a)``.

    Under the null hypothesis the two systems are exchangeable per query, so each per-query
    difference ``d_i = b_i - a_i`` is equally likely to have either sign. With ``n`` queries
    and ``2**n <= trials`` (and ``n <= 16``) every sign vector is enumerated and the p-value is
    exact: ``#{s : |mean(s * d)| >= |mean(d)|} / 2**n``. Otherwise it is the Monte Carlo
    estimate ``(1 + #{trials : |mean(s * d)| >= |mean(d)|}) / (1 + trials)`` with ``s``
    uniform in ``{-1, +1}^n``. Identical systems give ``p = 1``; a system better on every
    query gives the test's floor (:attr:`SignificanceResult.floor`).

    Args:
        values_a: per-query values of system A (the baseline).
        values_b: per-query values of system B, same query order.
        trials: random sign vectors (Monte Carlo).
        seed: RNG seed (results are reproducible).

    Raises:
        ValueError: lengths differ or ``trials < 1``.
    """
    a, b = _pair(values_a, values_b)
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    n = a.shape[0]
    diff = b - a
    observed = abs(diff.mean()) if n else 0.0
    tol = 1e-12
    if n <= MAX_EXACT_QUERIES and 2**n <= trials:
        signs = np.array(list(itertools.product([-1.0, 1.0], repeat=n))) if n else np.ones((1, 0))
        means = np.abs((signs * diff).mean(axis=1)) if n else np.zeros(1)
        count = int((means >= observed - tol).sum())
        p_value, used, exact = count / signs.shape[0], signs.shape[0], True
    else:
        rng = np.random.default_rng(seed)
        count = 0
        chunk = 1000
        for start in range(0, trials, chunk):
            m = min(chunk, trials - start)
            signs = rng.choice(np.array([-1.0, 1.0]), size=(m, n))
            means = np.abs((signs * diff).mean(axis=1))
            count += int((means >= observed - tol).sum())
        p_value, used, exact = (1 + count) / (1 + trials), trials, False
    return SignificanceResult(
        mean_a=float(a.mean()) if n else 0.0,
        mean_b=float(b.mean()) if n else 0.0,
        difference=float(diff.mean()) if n else 0.0,
        p_value=float(min(1.0, p_value)),
        num_queries=n,
        trials=used,
        exact=exact,
    )


@dataclass(frozen=True)
class ConfidenceInterval:
    """A bootstrap interval of ``mean(b) - mean(a)``."""

    difference: float
    low: float
    high: float
    level: float
    resamples: int

    @property
    def excludes_zero(self) -> bool:
        """True when 0 lies outside ``[low, high]``."""
        return self.low > 0 or self.high < 0


def bootstrap_ci(
    values_a: Sequence[float],
    values_b: Sequence[float],
    *,
    resamples: int = 2_000,
    level: float = 0.95,
    seed: int = 0,
) -> ConfidenceInterval:
    """Percentile bootstrap interval of the mean paired difference ``b - a``.

    Queries are resampled with replacement ``resamples`` times; the interval is the
    ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the resampled means.

    Raises:
        ValueError: lengths differ, no query, ``resamples < 1`` or ``level`` not in (0, 1).
    """
    a, b = _pair(values_a, values_b)
    if not a.size:
        raise ValueError("bootstrap_ci needs at least one query")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    diff = b - a
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = 500
    for start in range(0, resamples, chunk):
        m = min(chunk, resamples - start)
        idx = rng.integers(0, diff.size, size=(m, diff.size))
        means[start : start + m] = diff[idx].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return ConfidenceInterval(float(diff.mean()), float(low), float(high), level, resamples)


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given).

    Sorted ascending, the ``i``-th (0-based) of ``m`` p-values becomes
    ``max_{j <= i} min(1, (m - j) * p_(j))``.

    Raises:
        ValueError: a p-value outside [0, 1].
    """
    ps = [float(p) for p in p_values]
    if any(not 0.0 <= p <= 1.0 for p in ps):
        raise ValueError(f"p-values must be in [0, 1], got {ps}")
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        out[i] = running
    return out
