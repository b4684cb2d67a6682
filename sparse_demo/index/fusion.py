"""Hybrid fusion with OpenSearch's semantics, as pure functions.

Two methods, both taking the ranked *legs* (lists of hits, best first) of any backend:

``minmax`` -- OpenSearch's ``normalization-processor`` with ``min_max`` normalization and
``arithmetic_mean`` combination (neural-search 2.19 behaviour):

* each leg is normalized over *its own candidates*: ``n = (s - min) / (max - min)``;
* the leg's lowest score gives ``0.001`` rather than 0 (OpenSearch's ``MIN_SCORE``), so a
  document that a leg did retrieve always counts for a little;
* when all of a leg's scores are equal (including a single hit), every one becomes ``1.0``;
* a document missing from a leg gets ``0.0`` for that leg, and the leg's weight still
  counts in the denominator;
* combined ``= sum_i(w_i * n_i) / sum_i(w_i)``; with weights summing to 1 that is
  ``sum_i(w_i * n_i)``.

``rrf`` -- OpenSearch's ``score-ranker-processor`` (reciprocal rank fusion):
``score = sum_i w_i / (rank_constant + rank_i)`` over the legs that retrieved the document,
``rank_i`` 1-based, ``rank_constant`` 60 by default and ``w_i = 1`` unless weights are given.

Ties are broken by document id (ascending) everywhere, so the output is deterministic.

Example:
    >>> from sparse_demo.index.base import Hit
    >>> bm25 = [Hit("a", 3.0, 1), Hit("b", 1.0, 2)]
    >>> sparse = [Hit("b", 8.0, 1), Hit("c", 4.0, 2)]
    >>> [(h.id, round(h.score, 4)) for h in fuse_minmax([bm25, sparse]).hits]
    [('b', 0.5005), ('a', 0.5), ('c', 0.0005)]
    >>> [(h.id, round(h.score, 5)) for h in fuse_rrf([bm25, sparse]).hits]
    [('b', 0.03252), ('a', 0.01639), ('c', 0.01613)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sparse_demo.index.base import Hit, SearchResult

FusionMethod = Literal["minmax", "rrf"]
FUSION_METHODS: tuple[str, ...] = ("minmax", "rrf")

#: OpenSearch min_max: what the lowest score of a leg maps to (instead of 0).
MINMAX_MIN_SCORE = 0.001
#: OpenSearch min_max: what every score maps to when a leg's scores are all equal.
MINMAX_SINGLE_SCORE = 1.0
#: OpenSearch score-ranker default rank constant.
DEFAULT_RANK_CONSTANT = 60
_WEIGHT_SUM_TOLERANCE = 1e-6

Leg = Sequence[Hit] | SearchResult


@dataclass(frozen=True)
class FusedHit:
    """A fused hit with each leg's evidence.

    Attributes:
        id: Document id.
        score: Fused score.
        rank: 1-based rank in the fused list.
        leg_scores: Raw score per leg, None where the leg did not retrieve the document.
        leg_ranks: 1-based rank per leg, None where absent.
        leg_normalized: Per-leg value entering the combination: the min-max normalized
            score (``minmax``) or ``1 / (rank_constant + rank)`` (``rrf``); 0.0 where absent.
    """

    id: str
    score: float
    rank: int
    leg_scores: tuple[float | None, ...]
    leg_ranks: tuple[int | None, ...]
    leg_normalized: tuple[float, ...]


@dataclass(frozen=True)
class FusionResult:
    """Fused ranking plus the settings that produced it."""

    method: str
    weights: tuple[float, ...]
    hits: list[FusedHit]
    leg_names: tuple[str, ...] = ()
    rank_constant: int | None = None

    @property
    def ids(self) -> list[str]:
        return [h.id for h in self.hits]


def validate_weights(weights: Sequence[float], n_legs: int) -> tuple[float, ...]:
    """Check fusion weights: one per leg, each in [0, 1], summing to 1.

    Raises:
        ValueError: on a wrong count, a negative/non-finite weight or a sum other than 1.
    """
    try:
        ws = tuple(float(w) for w in weights)
    except (TypeError, ValueError):
        raise ValueError(f"weights must be a sequence of numbers, got {weights!r}") from None
    if len(ws) != n_legs:
        raise ValueError(f"expected {n_legs} weights (one per leg), got {len(ws)}: {ws}")
    for w in ws:
        if not math.isfinite(w) or w < 0.0 or w > 1.0:
            raise ValueError(f"each weight must be in [0, 1], got {ws}")
    if abs(sum(ws) - 1.0) > _WEIGHT_SUM_TOLERANCE:
        raise ValueError(f"weights must sum to 1 (like OpenSearch's normalization processor), got {ws} (sum {sum(ws)})")
    return ws


def minmax_normalize(scores: Sequence[float]) -> list[float]:
    """OpenSearch ``min_max`` normalization of one leg's candidate scores.

    Returns ``(s - min) / (max - min)`` with the minimum mapped to ``0.001``, and ``1.0``
    for every score when all are equal.
    """
    if not scores:
        return []
    lo, hi = min(scores), max(scores)
    if hi == lo:
        return [MINMAX_SINGLE_SCORE] * len(scores)
    out = []
    for s in scores:
        n = (s - lo) / (hi - lo)
        out.append(MINMAX_MIN_SCORE if n == 0.0 else n)
    return out


def _leg_hits(leg: Leg, index: int) -> list[Hit]:
    hits = list(leg.hits if isinstance(leg, SearchResult) else leg)
    seen: set[str] = set()
    for h in hits:
        if h.id in seen:
            raise ValueError(f"leg {index} lists document {h.id!r} twice")
        seen.add(h.id)
        if not math.isfinite(h.score):
            raise ValueError(f"leg {index}: score of {h.id!r} is not finite ({h.score})")
    # Best first, ties by id: ranks are then reproducible whatever order a backend used.
    hits.sort(key=lambda h: (-h.score, h.id))
    return hits


def _leg_names(legs: Sequence[Leg]) -> tuple[str, ...]:
    return tuple(leg.leg if isinstance(leg, SearchResult) else f"leg{i}" for i, leg in enumerate(legs))


def _finish(
    per_doc: dict[str, list],
    n_legs: int,
    score_fn,
    k: int | None,
) -> list[FusedHit]:
    rows = []
    for doc_id, slots in per_doc.items():
        raw = tuple(s[0] if s else None for s in slots)
        ranks = tuple(s[1] if s else None for s in slots)
        normed = tuple(s[2] if s else 0.0 for s in slots)
        rows.append((score_fn(normed, ranks), doc_id, raw, ranks, normed))
    rows.sort(key=lambda r: (-r[0], r[1]))
    if k is not None:
        rows = rows[:k]
    return [
        FusedHit(id=doc_id, score=score, rank=i + 1, leg_scores=raw, leg_ranks=ranks, leg_normalized=normed)
        for i, (score, doc_id, raw, ranks, normed) in enumerate(rows)
    ]


def fuse_minmax(
    legs: Sequence[Leg],
    weights: Sequence[float] | None = None,
    k: int | None = None,
) -> FusionResult:
    """Min-max normalize each leg, then take the weighted arithmetic mean.

    Args:
        legs: Ranked hit lists (or SearchResults), one per leg.
        weights: One weight per leg, summing to 1; default equal weights.
        k: Keep the top ``k`` fused hits (all when None).

    Returns:
        FusionResult with hits sorted by fused score, ties by id.
    """
    n = len(legs)
    if n == 0:
        raise ValueError("fusion needs at least one leg")
    ws = validate_weights(weights if weights is not None else [1.0 / n] * n, n)
    per_doc: dict[str, list] = {}
    for li, leg in enumerate(legs):
        hits = _leg_hits(leg, li)
        normed = minmax_normalize([h.score for h in hits])
        for rank, (h, v) in enumerate(zip(hits, normed), start=1):
            per_doc.setdefault(h.id, [None] * n)[li] = (h.score, rank, v)
    total_w = sum(ws)

    def score_fn(normed: tuple[float, ...], _ranks) -> float:
        # Absent legs contribute 0.0 and their weight stays in the denominator.
        return sum(w * v for w, v in zip(ws, normed)) / total_w if total_w > 0 else 0.0

    hits = _finish(per_doc, n, score_fn, k)
    return FusionResult("minmax", ws, hits, _leg_names(legs))


def fuse_rrf(
    legs: Sequence[Leg],
    rank_constant: int = DEFAULT_RANK_CONSTANT,
    weights: Sequence[float] | None = None,
    k: int | None = None,
) -> FusionResult:
    """Reciprocal rank fusion: ``sum_i w_i / (rank_constant + rank_i)``.

    Args:
        legs: Ranked hit lists (or SearchResults), one per leg.
        rank_constant: OpenSearch's ``rank_constant`` (>= 1), default 60.
        weights: Optional per-leg weights summing to 1; default 1.0 for every leg
            (OpenSearch's score-ranker default, the classic RRF formula).
        k: Keep the top ``k`` fused hits (all when None).
    """
    n = len(legs)
    if n == 0:
        raise ValueError("fusion needs at least one leg")
    if isinstance(rank_constant, bool) or not isinstance(rank_constant, int) or rank_constant < 1:
        raise ValueError(f"rank_constant must be an integer >= 1, got {rank_constant!r}")
    ws = validate_weights(weights, n) if weights is not None else (1.0,) * n
    per_doc: dict[str, list] = {}
    for li, leg in enumerate(legs):
        for rank, h in enumerate(_leg_hits(leg, li), start=1):
            per_doc.setdefault(h.id, [None] * n)[li] = (h.score, rank, 1.0 / (rank_constant + rank))

    def score_fn(normed: tuple[float, ...], _ranks) -> float:
        return sum(w * v for w, v in zip(ws, normed))

    hits = _finish(per_doc, n, score_fn, k)
    return FusionResult("rrf", ws, hits, _leg_names(legs), rank_constant)


def fuse(
    legs: Sequence[Leg],
    method: FusionMethod = "minmax",
    weights: Sequence[float] | None = None,
    k: int | None = None,
    rank_constant: int = DEFAULT_RANK_CONSTANT,
) -> FusionResult:
    """Dispatch to :func:`fuse_minmax` or :func:`fuse_rrf` by name."""
    if method == "minmax":
        return fuse_minmax(legs, weights=weights, k=k)
    if method == "rrf":
        return fuse_rrf(legs, rank_constant=rank_constant, weights=weights, k=k)
    raise ValueError(f"unknown fusion method {method!r}; choose one of {', '.join(FUSION_METHODS)}")
