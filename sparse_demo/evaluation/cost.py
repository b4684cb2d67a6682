"""Cost figures of a retrieval system: active dimensions, FLOPS, index bytes, latency.

FLOPS follows the SPLADE papers (Formal et al. 2021, Paria et al. 2020): the expected number
of multiplications of a query-document dot product through an inverted index,
``FLOPS = sum_v p_q(v) * p_d(v)``, where ``p_q(v)`` is the share of queries and ``p_d(v)``
the share of documents in which dimension ``v`` is active. The same formula over BM25 terms
gives BM25's posting-list work.

Memory-index bytes are what the memory backend's leg reports for these vectors
(:attr:`sparse_demo.index.memory.SparseIndex.nbytes`: its postings matrix's weights, rows and
pointers, :func:`sparse_demo.index.bm25.csc_nbytes`); a BM25 leg holds one posting per distinct term.

FLOPS here is only this expected-multiplications figure; the per-vector sum of squared weights
(the FLOPS *regulariser* of one vector) is :attr:`sparse_demo.analysis.VectorStats.sum_squares`.

Example:
    >>> flops([{"a": 1.0}, {"a": 2.0, "b": 1.0}], [{"a": 1.0}, {"b": 1.0}])
    0.75
    >>> index_bytes([{"a": 1.0}, {"a": 2.0, "b": 1.0}])
    36
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from sparse_demo.index.memory import SparseIndex

logger = logging.getLogger(__name__)


def _activity(vectors: Sequence[Iterable[str]]) -> Counter:
    counts: Counter = Counter()
    for v in vectors:
        counts.update(set(v))
    return counts


def flops(queries: Sequence[Iterable[str]], docs: Sequence[Iterable[str]]) -> float:
    """``sum_v p_q(v) * p_d(v)`` over the dimensions (tokens or terms) of two collections.

    Args:
        queries: per query, its active dimensions (a dict's keys or a term list).
        docs: per document, its active dimensions.
    """
    if not queries or not docs:
        return 0.0
    q, d = _activity(queries), _activity(docs)
    nq, nd = len(queries), len(docs)
    return float(sum(c * d[v] for v, c in q.items() if v in d) / (nq * nd))


def mean_active(vectors: Sequence[Iterable[str]]) -> float:
    """Mean number of distinct active dimensions per vector (0 for none)."""
    return float(np.mean([len(set(v)) for v in vectors])) if vectors else 0.0


def index_bytes(vectors: Sequence[Mapping[str, float] | Iterable[str]]) -> int:
    """Bytes a memory-backend leg holding these vectors reports (term lists: one posting per distinct term)."""
    rows = [dict(v) if isinstance(v, Mapping) else dict.fromkeys(v, 1.0) for v in vectors]
    rows = [r for r in rows if r]
    if not rows:
        return 0
    index = SparseIndex()
    index.add([str(i) for i in range(len(rows))], rows)
    return index.nbytes


def percentile(values: Sequence[float], q: float = 50.0) -> float:
    """The ``q``-th percentile (0 for no value)."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else 0.0


def opensearch_store_bytes(backend: Any) -> int | None:
    """The primary store size of an OpenSearch backend's index from ``_stats`` (None elsewhere)."""
    if getattr(backend, "name", "") != "opensearch":
        return None
    try:
        client = backend.client
        client.indices.refresh(index=backend.index)
        stats = client.indices.stats(index=backend.index, metric="store")
        return int(stats["_all"]["primaries"]["store"]["size_in_bytes"])
    except Exception as exc:  # noqa: BLE001 - a missing figure must not fail the table
        logger.warning("could not read the OpenSearch store size: %s", exc)
        return None
