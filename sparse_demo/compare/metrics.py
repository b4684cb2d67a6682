"""Overlap of two top-k lists: Jaccard, weighted overlap (Ruzicka) and rank-biased overlap.

Two empty lists are identical (every figure is 1); one empty list shares nothing (0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

DEFAULT_RBO_P = 0.9


def jaccard(a: Sequence[str] | set[str], b: Sequence[str] | set[str]) -> float:
    """|A ∩ B| / |A ∪ B| of two key sets (1.0 when both are empty)."""
    sa, sb = set(a), set(b)
    union = sa | sb
    return len(sa & sb) / len(union) if union else 1.0


def weighted_overlap(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Σ min(w_A, w_B) / Σ max(w_A, w_B) over the union of keys, a missing key weighing 0.

    1.0 when both are empty (or all zero).

    Example:
        >>> weighted_overlap({"a": 3, "b": 2, "c": 1}, {"b": 4, "c": 1, "d": 2})
        0.3
    """
    keys = set(a) | set(b)
    lo = sum(min(a.get(k, 0.0), b.get(k, 0.0)) for k in keys)
    hi = sum(max(a.get(k, 0.0), b.get(k, 0.0)) for k in keys)
    return lo / hi if hi > 0 else 1.0


def rbo(a: Sequence[str], b: Sequence[str], p: float = DEFAULT_RBO_P) -> float:
    """Extrapolated rank-biased overlap of two rankings of distinct items.

    With ``S`` the shorter ranking (length ``s``), ``L`` the longer (length ``l``),
    ``X_d = |S[:min(d, s)] ∩ L[:d]|`` the overlap at depth ``d``, Webber, Moffat & Zobel
    (2010), eq. 32::

        RBO_ext = (1 - p) / p * ( Σ_{d=1..l} X_d / d * p^d
                                  + Σ_{d=s+1..l} X_s * (d - s) / (s * d) * p^d )
                  + ( (X_l - X_s) / l + X_s / s ) * p^l

    For equal lengths ``k`` this is ``(1-p)/p Σ_{d=1..k} X_d/d p^d + X_k/k p^k``. It is 1 for
    identical rankings, 0 for disjoint ones, and weighs the top ranks most: with ``p = 0.9``
    the first 10 ranks carry about 86% of the weight.

    Args:
        a: first ranking (best first).
        b: second ranking.
        p: persistence, 0 < p < 1.

    Returns:
        RBO in [0, 1]; 1.0 when both are empty, 0.0 when exactly one is.

    Raises:
        ValueError: ``p`` outside (0, 1), or a ranking repeats an item.

    References:
        W. Webber, A. Moffat, J. Zobel. A similarity measure for indefinite rankings.
        ACM TOIS 28(4), 2010.

    Example:
        >>> round(rbo(["a", "b"], ["b", "a"]), 6)
        0.9
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    for name, seq in (("a", a), ("b", b)):
        if len(set(seq)) != len(seq):
            raise ValueError(f"ranking {name} repeats an item; RBO needs distinct items")
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    short, long_ = (list(a), list(b)) if len(a) <= len(b) else (list(b), list(a))
    s, l_ = len(short), len(long_)
    seen_s: set[str] = set()
    seen_l: set[str] = set()
    overlap = 0
    x_s = 0
    total = 0.0
    for d in range(1, l_ + 1):
        item_l = long_[d - 1]
        if d <= s:
            item_s = short[d - 1]
            if item_s == item_l:
                overlap += 1
            else:
                overlap += (item_s in seen_l) + (item_l in seen_s)
            seen_s.add(item_s)
            seen_l.add(item_l)
            if d == s:
                x_s = overlap
        else:
            overlap += item_l in seen_s
            seen_l.add(item_l)
            total += x_s * (d - s) / (s * d) * p**d
        total += overlap / d * p**d
    value = (1 - p) / p * total + ((overlap - x_s) / l_ + x_s / s) * p**l_
    return float(min(1.0, max(0.0, value)))


__all__ = ["DEFAULT_RBO_P", "jaccard", "rbo", "weighted_overlap"]
