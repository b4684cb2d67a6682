"""Search layer: BM25 and sparse legs over an in-memory or OpenSearch backend, and fusion.

Example:
    >>> from sparse_demo.index import IndexDocument, MemoryBackend, hybrid_search
    >>> be = MemoryBackend()
    >>> be.add([IndexDocument("d1", "혈당", ["혈당/NNG"], {"혈당": 1.0})])
    1
    >>> hybrid_search(be, ["혈당/NNG"], {"혈당": 2.0}, k=5).ids
    ['d1']
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sparse_demo.index.base import (
    PASSAGE_SEP,
    Hit,
    IndexDocument,
    SearchBackend,
    SearchResult,
    SparseExplanation,
    TokenContribution,
    validate_sparse_vector,
)
from sparse_demo.index.bm25 import BM25Index
from sparse_demo.index.fusion import (
    DEFAULT_RANK_CONSTANT,
    FUSION_METHODS,
    FusedHit,
    FusionMethod,
    FusionResult,
    fuse,
    fuse_minmax,
    fuse_rrf,
    minmax_normalize,
)
from sparse_demo.index.memory import MemoryBackend, SparseIndex

__all__ = [
    "PASSAGE_SEP",
    "FUSION_METHODS",
    "AnalyzerMismatchError",
    "BM25Index",
    "FusedHit",
    "FusionResult",
    "Hit",
    "HybridResult",
    "IndexDocument",
    "MemoryBackend",
    "OpenSearchBackend",
    "OpenSearchUnavailable",
    "SearchBackend",
    "SearchResult",
    "SparseExplanation",
    "SparseIndex",
    "TokenContribution",
    "fuse",
    "fuse_minmax",
    "fuse_rrf",
    "hybrid_search",
    "minmax_normalize",
    "validate_sparse_vector",
]

#: Candidates fetched per leg when ``hybrid_search`` is not told otherwise.
DEFAULT_CANDIDATES = 100


@dataclass(frozen=True)
class HybridResult:
    """A hybrid search: both legs as the backend returned them, and their fusion."""

    bm25: SearchResult
    sparse: SearchResult
    fusion: FusionResult
    took_ms: float

    @property
    def hits(self) -> list[FusedHit]:
        return self.fusion.hits

    @property
    def ids(self) -> list[str]:
        return self.fusion.ids


def hybrid_search(
    backend: SearchBackend,
    query_terms: Sequence[str],
    qvec: Mapping[str, float],
    k: int = 10,
    method: FusionMethod = "minmax",
    weights: Sequence[float] | None = (0.5, 0.5),
    candidates: int | None = None,
    rank_constant: int = DEFAULT_RANK_CONSTANT,
) -> HybridResult:
    """Fetch the BM25 and sparse legs from ``backend`` and fuse them.

    Fusion runs here, in Python, on the legs alone (see :mod:`sparse_demo.index.fusion`),
    so the result is identical whichever backend produced the same legs.

    Args:
        backend: Any :class:`SearchBackend` (memory or OpenSearch).
        query_terms: BM25 terms of the query (``backend.analyzer.terms(query)``).
        qvec: Query search vector; empty for a BM25-only search.
        k: Fused hits to return.
        method: ``"minmax"`` (normalization processor) or ``"rrf"`` (score ranker).
        weights: ``(bm25, sparse)`` weights summing to 1. For ``rrf``, None means the
            classic unweighted sum (OpenSearch's default); the default (0.5, 0.5) halves
            every score without changing the ranking.
        candidates: Hits fetched per leg before fusion (>= k); default ``max(k, 100)``.
        rank_constant: RRF rank constant (default 60).

    Returns:
        HybridResult with both legs and the fused ranking.
    """
    if method not in FUSION_METHODS:
        raise ValueError(f"unknown fusion method {method!r}; choose one of {', '.join(FUSION_METHODS)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    n_cand = max(k, DEFAULT_CANDIDATES) if candidates is None else candidates
    if isinstance(n_cand, bool) or not isinstance(n_cand, int) or n_cand < k:
        raise ValueError(f"candidates must be an integer >= k ({k}), got {candidates!r}")
    if method == "minmax" and weights is None:
        weights = (0.5, 0.5)
    t0 = time.perf_counter()
    terms = list(query_terms)
    bm25 = backend.search_bm25(terms, n_cand) if terms else SearchResult("bm25", [], 0.0, backend.name)
    sparse = backend.search_sparse(qvec, n_cand) if qvec else SearchResult("sparse", [], 0.0, backend.name)
    fused = fuse([bm25, sparse], method=method, weights=weights, k=k, rank_constant=rank_constant)
    return HybridResult(bm25, sparse, fused, (time.perf_counter() - t0) * 1000)


def __getattr__(name: str):
    # opensearch-py is imported only when the OpenSearch backend is used.
    if name in ("AnalyzerMismatchError", "OpenSearchBackend", "OpenSearchUnavailable"):
        from sparse_demo.index import opensearch

        return getattr(opensearch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
