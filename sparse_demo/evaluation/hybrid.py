"""Min-max hybrid fusion of score lists and score matrices (the trainer's held-out check).

The evaluator fuses search legs with :func:`sparse_demo.index.fuse`, exactly as the Search tab;
these helpers are its vectorised twin for ``[queries, docs]`` score matrices.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np

from sparse_demo.index.fusion import MINMAX_MIN_SCORE, MINMAX_SINGLE_SCORE, minmax_normalize


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


