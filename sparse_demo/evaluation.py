"""Retrieval metrics, min-max hybrid fusion of score lists and a paired significance test.

All functions are pure. A *ranking* is a sequence of document ids, best first; a *gold set*
is the set of relevant ids for that query (binary relevance).

Definitions (per query, then averaged over queries):

* ``R@k``      = ``|gold ∩ ranking[:k]| / |gold|``
* ``MRR@10``   = ``1 / rank`` of the first relevant id within the top 10 (0 when none)
* ``nDCG@10``  = ``DCG@10 / IDCG@10`` with ``DCG = sum_i rel_i / log2(i + 1)``, ``i`` 1-based,
  and ``IDCG`` the DCG of ``min(|gold|, 10)`` relevant ids at the top.

Example:
    >>> m = retrieval_metrics([["d2", "d1"], ["d9", "d8"]], [{"d1"}, {"d7"}])
    >>> round(m.recall[1], 3), round(m.mrr10, 3)
    (0.0, 0.25)
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from sparse_demo.index.fusion import MINMAX_MIN_SCORE, MINMAX_SINGLE_SCORE, minmax_normalize

DEFAULT_KS: tuple[int, ...] = (1, 5, 10)


@dataclass(frozen=True)
class RetrievalMetrics:
    """Averaged retrieval metrics plus the per-query reciprocal ranks (for significance tests).

    Attributes:
        recall: ``{k: R@k}``.
        mrr10: mean reciprocal rank within the top 10.
        ndcg10: mean nDCG@10.
        num_queries: queries evaluated.
        reciprocal_ranks: per-query ``1/rank`` within the top 10 (0 when not found).
    """

    recall: dict[int, float]
    mrr10: float
    ndcg10: float
    num_queries: int
    reciprocal_ranks: tuple[float, ...] = field(default=(), repr=False)

    def as_row(self) -> dict[str, float]:
        """A flat dict for tables: ``R@1, R@5, R@10, MRR@10, nDCG@10``."""
        row = {f"R@{k}": v for k, v in sorted(self.recall.items())}
        row["MRR@10"] = self.mrr10
        row["nDCG@10"] = self.ndcg10
        return row

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("reciprocal_ranks")
        d["recall"] = {str(k): v for k, v in self.recall.items()}
        return d


def _ndcg_at(ranking: Sequence[Hashable], gold: set, k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, doc in enumerate(ranking[:k]) if doc in gold)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(gold), k)))
    return dcg / ideal if ideal > 0 else 0.0


def retrieval_metrics(
    rankings: Sequence[Sequence[Hashable]],
    golds: Sequence[set | frozenset | Sequence[Hashable]],
    ks: Sequence[int] = DEFAULT_KS,
) -> RetrievalMetrics:
    """R@k, MRR@10 and nDCG@10 of ranked lists against gold sets.

    Args:
        rankings: per query, document ids best first (duplicates count once).
        golds: per query, the relevant ids (non-empty).
        ks: cut-offs for recall.

    Raises:
        ValueError: lengths differ, a gold set is empty or a k is < 1.
    """
    if len(rankings) != len(golds):
        raise ValueError(f"got {len(rankings)} rankings but {len(golds)} gold sets")
    if any(k < 1 for k in ks):
        raise ValueError(f"every k must be >= 1, got {list(ks)}")
    recall = {int(k): 0.0 for k in ks}
    rrs: list[float] = []
    ndcg = 0.0
    for qi, (ranking, gold) in enumerate(zip(rankings, golds)):
        gold = set(gold)
        if not gold:
            raise ValueError(f"query {qi} has an empty gold set")
        seen: set = set()
        ranking = [d for d in ranking if not (d in seen or seen.add(d))]
        for k in recall:
            recall[k] += len(gold.intersection(ranking[:k])) / len(gold)
        rr = 0.0
        for i, doc in enumerate(ranking[:10]):
            if doc in gold:
                rr = 1.0 / (i + 1)
                break
        rrs.append(rr)
        ndcg += _ndcg_at(ranking, gold, 10)
    n = max(1, len(rankings))
    return RetrievalMetrics(
        recall={k: v / n for k, v in recall.items()},
        mrr10=float(sum(rrs) / n),
        ndcg10=ndcg / n,
        num_queries=len(rankings),
        reciprocal_ranks=tuple(rrs),
    )


def rankings_from_scores(scores: np.ndarray, doc_ids: Sequence[Hashable], k: int = 10) -> list[list[Hashable]]:
    """Top-``k`` document ids per row of a ``[queries, docs]`` score matrix (ties: lower index first)."""
    scores = np.asarray(scores)
    k = min(k, scores.shape[1])
    out = []
    for row in scores:
        top = np.argpartition(-row, k - 1)[:k] if k < row.shape[0] else np.arange(row.shape[0])
        top = top[np.lexsort((top, -row[top]))]
        out.append([doc_ids[i] for i in top])
    return out


def minmax_hybrid(
    scores_a: Mapping[Hashable, float],
    scores_b: Mapping[Hashable, float],
    weight_a: float = 0.5,
) -> list[tuple[Hashable, float]]:
    """Fuse two legs' candidate scores like OpenSearch's normalization processor.

    Each leg is min-max normalised over its own candidates with
    :func:`sparse_demo.index.fusion.minmax_normalize` (``(s - min) / (max - min)``, the
    minimum mapped to 0.001 as OpenSearch does, all 1.0 when ``max == min``); a document
    missing from a leg scores 0 in that leg; the fused score is
    ``weight_a * a + (1 - weight_a) * b``. The Search tab fuses with the same normalisation.

    Args:
        scores_a: ``{doc: score}`` of leg A's candidates (e.g. the sparse model's top 100).
        scores_b: the same for leg B (e.g. BM25).
        weight_a: weight of leg A in ``[0, 1]``.

    Returns:
        ``[(doc, fused score)]`` sorted by descending score (ties by first appearance).

    Example:
        >>> minmax_hybrid({"a": 3.0, "b": 1.0}, {"b": 10.0, "c": 5.0}, 0.5)
        [('b', 0.5005), ('a', 0.5), ('c', 0.0005)]
    """
    if not 0.0 <= weight_a <= 1.0:
        raise ValueError(f"weight_a must be in [0, 1], got {weight_a}")

    def norm(scores: Mapping[Hashable, float]) -> dict[Hashable, float]:
        return dict(zip(scores, minmax_normalize(list(scores.values()))))

    na, nb = norm(scores_a), norm(scores_b)
    order = list(dict.fromkeys([*scores_b.keys(), *scores_a.keys()]))
    fused = {d: weight_a * na.get(d, 0.0) + (1.0 - weight_a) * nb.get(d, 0.0) for d in order}
    pos = {d: i for i, d in enumerate(order)}
    return sorted(fused.items(), key=lambda x: (-x[1], pos[x[0]]))


def hybrid_score_matrix(
    scores_a: np.ndarray, scores_b: np.ndarray, weight_a: float = 0.5, depth: int = 100
) -> np.ndarray:
    """:func:`minmax_hybrid` for whole ``[queries, docs]`` score matrices.

    Each leg's candidates are its top-``depth`` documents per query; normalisation and
    fusion follow :func:`minmax_hybrid`. Documents that are candidates of neither leg get
    ``-inf``.
    """
    if scores_a.shape != scores_b.shape:
        raise ValueError(f"score matrices differ in shape: {scores_a.shape} vs {scores_b.shape}")
    if not 0.0 <= weight_a <= 1.0:
        raise ValueError(f"weight_a must be in [0, 1], got {weight_a}")
    n_docs = scores_a.shape[1]
    depth = max(1, min(depth, n_docs))

    def leg(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = np.asarray(scores, dtype=np.float64)
        top = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
        vals = np.take_along_axis(scores, top, axis=1)
        lo, hi = vals.min(axis=1, keepdims=True), vals.max(axis=1, keepdims=True)
        span = hi - lo
        normed = np.where(span > 0, (vals - lo) / np.where(span > 0, span, 1.0), MINMAX_SINGLE_SCORE)
        normed = np.where(normed == 0.0, MINMAX_MIN_SCORE, normed)  # as minmax_normalize
        full = np.zeros_like(scores)
        cand = np.zeros(scores.shape, dtype=bool)
        np.put_along_axis(full, top, normed, axis=1)
        np.put_along_axis(cand, top, True, axis=1)
        return full, cand

    na, ca = leg(scores_a)
    nb, cb = leg(scores_b)
    fused = weight_a * na + (1.0 - weight_a) * nb
    return np.where(ca | cb, fused, -np.inf)


@dataclass(frozen=True)
class SignificanceResult:
    """A paired randomization test on per-query values (e.g. reciprocal ranks).

    Attributes:
        mean_a, mean_b: means of the two systems.
        difference: ``mean_b - mean_a``.
        p_value: two-sided p-value.
        num_queries: pairs compared.
        trials: random sign flips drawn.
    """

    mean_a: float
    mean_b: float
    difference: float
    p_value: float
    num_queries: int
    trials: int

    @property
    def significant(self) -> bool:
        """True when ``p_value < 0.05``."""
        return self.p_value < 0.05


def paired_randomization_test(
    values_a: Sequence[float], values_b: Sequence[float], *, trials: int = 10_000, seed: int = 0
) -> SignificanceResult:
    """Two-sided paired randomization (sign-flip) test of ``mean(b) - mean(a)``.

    Under the null hypothesis the two systems are exchangeable per query, so each per-query
    difference ``d_i = b_i - a_i`` is equally likely to have either sign. The p-value is
    ``(1 + #{trials : |mean(s * d)| >= |mean(d)|}) / (1 + trials)`` with ``s`` uniform in
    ``{-1, +1}^n``.

    Args:
        values_a, values_b: per-query values of the two systems, same query order.
        trials: random sign vectors.
        seed: RNG seed (results are reproducible).
    """
    a = np.asarray(values_a, dtype=np.float64)
    b = np.asarray(values_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"values must be two 1-D sequences of equal length, got {a.shape} and {b.shape}")
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    n = a.shape[0]
    diff = b - a
    observed = abs(diff.mean()) if n else 0.0
    rng = np.random.default_rng(seed)
    count = 0
    chunk = 1000
    for start in range(0, trials, chunk):
        m = min(chunk, trials - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(m, n))
        means = np.abs((signs * diff).mean(axis=1)) if n else np.zeros(m)
        count += int((means >= observed - 1e-12).sum())
    return SignificanceResult(
        mean_a=float(a.mean()) if n else 0.0,
        mean_b=float(b.mean()) if n else 0.0,
        difference=float(diff.mean()) if n else 0.0,
        p_value=(1 + count) / (1 + trials),
        num_queries=n,
        trials=trials,
    )


__all__ = [
    "DEFAULT_KS",
    "RetrievalMetrics",
    "SignificanceResult",
    "hybrid_score_matrix",
    "minmax_hybrid",
    "paired_randomization_test",
    "rankings_from_scores",
    "retrieval_metrics",
]
