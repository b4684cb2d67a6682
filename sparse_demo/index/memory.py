"""In-memory search backend: an inverted index for sparse vectors plus Lucene-style BM25.

The sparse leg scores the exact dot product ``sum_t q[t] * d[t]``. Postings are the
columns of a CSC matrix (token -> ascending doc rows and float32 weights); a query touches
only its own tokens' postings and scatter-adds them into a dense float64 score array (``np.add.at``
on ``intp`` rows, numpy's fast path), so it costs
``O(sum of the query tokens' posting lengths + n_docs)``.

``feature_precision="lucene"`` stores document weights with 9 significant bits and
multiplies in float32, as OpenSearch's ``rank_features`` does, so the two backends agree
bit for bit; the default ``"exact"`` keeps float32 weights.

Example:
    >>> from sparse_demo.index.base import IndexDocument
    >>> be = MemoryBackend()
    >>> be.add([IndexDocument("d1", "혈당 검사", ["혈당/NNG", "검사/NNG"], {"▁혈당": 1.5, "검사": 0.5}),
    ...         IndexDocument("d2", "검사", ["검사/NNG"], {"검사": 2.0})])
    2
    >>> [(h.id, h.score) for h in be.search_sparse({"검사": 1.0, "▁혈당": 2.0}).hits]
    [('d1', 3.5), ('d2', 2.0)]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np

from sparse_demo.index.base import (
    PASSAGE_SEP,
    Hit,
    IndexDocument,
    SearchResult,
    SparseExplanation,
    TokenContribution,
    validate_document,
    validate_k,
    validate_sparse_vector,
)
from sparse_demo.index.bm25 import (
    DEFAULT_B,
    DEFAULT_K1,
    BM25Index,
    CsrRowStore,
    top_k_indices,
)
from sparse_demo.korean import DEFAULT_ANALYZER, BM25Analyzer, get_analyzer
from sparse_demo.progress import Progress, counted

logger = logging.getLogger(__name__)

FeaturePrecision = Literal["exact", "lucene"]
_PRECISIONS = ("exact", "lucene")
#: Lucene's FeatureField keeps the top 9 significant bits of a float32 (``bits >>> 15``).
_LUCENE_FEATURE_MASK = np.uint32(0xFFFF8000)


def lucene_feature_value(weights: np.ndarray | float) -> np.ndarray:
    """A weight as ``rank_features`` stores it: float32 truncated to 9 significant bits."""
    arr = np.asarray(weights, dtype=np.float32)
    return (arr.view(np.uint32) & _LUCENE_FEATURE_MASK).view(np.float32)


class SparseIndex:
    """Inverted index over ``dict[str, float]`` vectors scored by dot product.

    Args:
        feature_precision: ``"exact"`` (float32 weights) or ``"lucene"`` (9-bit weights and
            float32 products, like OpenSearch ``rank_feature`` with ``linear``).
    """

    def __init__(self, feature_precision: FeaturePrecision = "exact"):
        if feature_precision not in _PRECISIONS:
            raise ValueError(f"feature_precision must be one of {_PRECISIONS}, got {feature_precision!r}")
        self.feature_precision = feature_precision
        self._store = CsrRowStore(dtype=np.float32)

    def __len__(self) -> int:
        return len(self._store)

    def add(self, ids: Sequence[str], vectors: Sequence[Mapping[str, float]]) -> None:
        """Add validated vectors (see :func:`validate_sparse_vector`)."""
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids but {len(vectors)} vectors")
        token_id = self._store.token_id
        indptr = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum([len(v) for v in vectors], out=indptr[1:])
        n = int(indptr[-1])
        cols = np.fromiter((token_id(t) for v in vectors for t in v), dtype=np.int32, count=n)
        vals = np.fromiter((w for v in vectors for w in v.values()), dtype=np.float64, count=n)
        self._add(ids, indptr, cols, vals)

    def add_encoded(
        self,
        ids: Sequence[str],
        indptr: np.ndarray,
        token_ids: np.ndarray,
        weights: np.ndarray,
        vocab: Sequence[str],
    ) -> None:
        """Add vectors as a CSR (fast path for large corpora; tokens unique per row).

        Args:
            ids: Document ids, one per row.
            indptr: Row pointers (length ``len(ids) + 1``).
            token_ids: Indices into ``vocab``.
            weights: Positive weights, aligned with ``token_ids``.
            vocab: Token strings.
        """
        token_ids = np.asarray(token_ids, dtype=np.int64)
        weights = np.asarray(weights)
        if token_ids.shape != weights.shape:
            raise ValueError("token_ids and weights must have the same length")
        if weights.size and not (np.all(np.isfinite(weights)) and weights.min() > 0):
            raise ValueError("weights must be finite and > 0")
        used = np.unique(token_ids)
        mapping = np.zeros(int(used.max()) + 1 if used.size else 1, dtype=np.int32)
        for u in used.tolist():
            tok = vocab[u]
            if not isinstance(tok, str) or not tok:
                raise ValueError(f"token names must be non-empty strings, got {tok!r}")
            mapping[u] = self._store.token_id(tok)
        self._add(ids, np.asarray(indptr, dtype=np.int64), mapping[token_ids], weights)

    def _add(self, ids: Sequence[str], indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> None:
        vals32 = np.asarray(vals, dtype=np.float32)
        if self.feature_precision == "lucene":
            vals32 = lucene_feature_value(vals32)
        self._store.add_rows(ids, indptr, cols, vals32)

    def clear(self) -> None:
        self._store = CsrRowStore(dtype=np.float32)

    @property
    def nbytes(self) -> int:
        """Bytes of this leg's postings (float32 weights, row indices, token pointers)."""
        return self._store.nbytes

    def _query_arrays(self, qvec: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        vocab = self._store.vocab
        pairs = [(vocab[t], w) for t, w in qvec.items() if t in vocab]
        tids = np.array([p[0] for p in pairs], dtype=np.int64)
        ws = np.array([p[1] for p in pairs], dtype=np.float64)
        return tids, ws

    def scores(self, qvec: Mapping[str, float]) -> np.ndarray:
        """Dot product of ``qvec`` with every document, in :meth:`doc_ids` order."""
        csc = self._store.matrix()
        acc = np.zeros(csc.shape[0], dtype=np.float64)
        indptr, rows, data = csc.indptr, csc.indices, csc.data
        lucene = self.feature_precision == "lucene"
        tids, ws = self._query_arrays(qvec)
        for tid, w in zip(tids.tolist(), ws.tolist()):
            s, e = int(indptr[tid]), int(indptr[tid + 1])
            if s == e:
                continue
            # np.add.at on intp rows and float64 values is numpy's fast scatter-add; rows are
            # unique within a column, so it equals acc[rows] += part.
            if lucene:
                part = (data[s:e] * np.float32(w)).astype(np.float64)
            else:
                part = data[s:e].astype(np.float64) * w
            np.add.at(acc, rows[s:e].astype(np.intp), part)
        if lucene:
            acc = acc.astype(np.float32).astype(np.float64)
        return acc

    def search(self, qvec: Mapping[str, float], k: int) -> list[Hit]:
        if len(self._store) == 0 or not qvec:
            return []
        scores = self.scores(qvec)
        top = top_k_indices(scores, k, self._store.id_rank)
        ids = self._store.ids
        return [Hit(ids[i], float(scores[i]), r) for r, i in enumerate(top.tolist(), start=1)]

    def doc_weights(self, doc_id: str, tokens: Iterable[str]) -> dict[str, float]:
        """The document's stored weights for ``tokens`` (absent tokens left out).

        Uses the postings (binary search per token), so it is cheap on large indexes.
        """
        row = self._store.row_of(doc_id)
        if row is None:
            return {}
        csc = self._store.matrix()
        out = {}
        for t in tokens:
            tid = self._store.vocab.get(t)
            if tid is None:
                continue
            s, e = csc.indptr[tid], csc.indptr[tid + 1]
            pos = s + int(np.searchsorted(csc.indices[s:e], row))
            if pos < e and csc.indices[pos] == row:
                out[t] = float(csc.data[pos])
        return out

    def doc_ids(self) -> list[str]:
        return list(self._store.ids)


class MemoryBackend:
    """Both search legs in process memory.

    Args:
        k1: BM25 ``k1`` (Lucene default 1.2).
        b: BM25 ``b`` (Lucene default 0.75).
        opensearch_compat: BM25 exactly as OpenSearch scores it (see :class:`BM25Index`).
        feature_precision: ``"exact"`` or ``"lucene"`` (9-bit stored weights, as OpenSearch).
        analyzer: The BM25 analyzer spec the documents' and queries' terms come from
            (:func:`sparse_demo.korean.get_analyzer`); recorded, not applied: documents
            arrive with their terms. Use ``backend.analyzer.terms(text)`` to make them.

    Attributes:
        analyzer: The :class:`~sparse_demo.korean.BM25Analyzer` (``analyzer.spec`` is its
            canonical spec).
    """

    name = "memory"

    def __init__(
        self,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        *,
        opensearch_compat: bool = True,
        feature_precision: FeaturePrecision = "exact",
        analyzer: str | BM25Analyzer = DEFAULT_ANALYZER,
    ):
        self.analyzer = get_analyzer(analyzer)
        self.bm25 = BM25Index(k1, b, opensearch_compat=opensearch_compat)
        self.sparse = SparseIndex(feature_precision)
        #: Window vectors of documents indexed as passages (``doc id + PASSAGE_SEP + j``); empty otherwise.
        self.passages = SparseIndex(feature_precision)
        self._owner: np.ndarray | None = None  # passage row -> document row, rebuilt after changes
        self._docs: dict[str, IndexDocument] = {}

    def add(self, docs: Iterable[IndexDocument], progress: Progress | None = None, batch_size: int = 1000) -> int:
        """Index documents (validated first; an existing id is replaced).

        Returns:
            Number of documents added.
        """
        docs = list(docs)
        for d in docs:
            validate_document(d)
        total = len(docs)
        for start in range(0, total, batch_size):
            batch = docs[start : start + batch_size]
            ids = [d.id for d in batch]
            self.bm25.add(ids, [list(d.terms) for d in batch])
            self.sparse.add(ids, [d.sparse for d in batch])
            with_passages = [d for d in batch if d.passages]
            if with_passages:
                self.passages.add(
                    [f"{d.id}{PASSAGE_SEP}{j}" for d in with_passages for j in range(len(d.passages))],
                    [p for d in with_passages for p in d.passages],
                )
                self._owner = None
            for d in batch:
                self._docs[d.id] = d
            counted(progress, min(start + batch_size, total), total, "documents indexed")
        logger.info("memory backend: indexed %d documents (%d in total)", total, len(self._docs))
        return total

    def get(self, doc_id: str) -> IndexDocument | None:
        """The indexed document with this id, if any."""
        return self._docs.get(doc_id)

    def search_bm25(self, terms: Sequence[str], k: int = 10) -> SearchResult:
        validate_k(k)
        t0 = time.perf_counter()
        hits = self.bm25.search(list(terms), k)
        return SearchResult("bm25", hits, (time.perf_counter() - t0) * 1000, self.name)

    def search_sparse(self, qvec: Mapping[str, float], k: int = 10) -> SearchResult:
        validate_k(k)
        qvec = validate_sparse_vector(qvec, what="query vector")
        t0 = time.perf_counter()
        hits = self._search_passages(qvec, k) if len(self.passages) else self.sparse.search(qvec, k)
        return SearchResult("sparse", hits, (time.perf_counter() - t0) * 1000, self.name)

    def _passage_owner(self) -> np.ndarray:
        """Each passage row's document row in :attr:`sparse` (both stores consolidated first)."""
        self.sparse._store.matrix()
        self.passages._store.matrix()
        if self._owner is None or len(self._owner) != len(self.passages):
            row_of = self.sparse._store.row_of
            self._owner = np.fromiter(
                (row_of(pid.rsplit(PASSAGE_SEP, 1)[0]) for pid in self.passages._store.ids),
                dtype=np.int64,
                count=len(self.passages),
            )
        return self._owner

    def _search_passages(self, qvec: Mapping[str, float], k: int) -> list[Hit]:
        """MaxP: a document scores its best passage (documents without passages score their own vector)."""
        if not qvec:
            return []
        owner = self._passage_owner()
        scores = self.sparse.scores(qvec)
        has_passages = np.zeros(scores.size, dtype=bool)
        has_passages[owner] = True
        scores[has_passages] = 0.0
        np.maximum.at(scores, owner, self.passages.scores(qvec))
        top = top_k_indices(scores, k, self.sparse._store.id_rank)
        ids = self.sparse._store.ids
        return [Hit(ids[i], float(scores[i]), r) for r, i in enumerate(top.tolist(), start=1)]

    def best_passage(self, doc_id: str, qvec: Mapping[str, float]) -> int | None:
        """The window number of the document's best passage for ``qvec`` (None: not indexed as passages)."""
        doc = self._docs.get(doc_id)
        if doc is None or not doc.passages:
            return None
        keys = [f"{doc_id}{PASSAGE_SEP}{j}" for j in range(len(doc.passages))]
        scores = [sum(w * self.passages.doc_weights(key, qvec).get(t, 0.0) for t, w in qvec.items()) for key in keys]
        return int(np.argmax(scores))

    def explain_sparse(self, doc_id: str, qvec: Mapping[str, float]) -> SparseExplanation:
        """Per-token contributions ``q[t] * d[t]`` to a document's sparse score.

        Raises:
            KeyError: the document is not indexed.
        """
        qvec = validate_sparse_vector(qvec, what="query vector")
        if self.sparse._store.row_of(doc_id) is None:
            raise KeyError(f"document {doc_id!r} is not in the index")
        best = self.best_passage(doc_id, qvec)
        if best is not None:  # passages: the best passage's contributions make the document's score
            dvec = self.passages.doc_weights(f"{doc_id}{PASSAGE_SEP}{best}", qvec)
        else:
            dvec = self.sparse.doc_weights(doc_id, qvec)
        contribs = [TokenContribution(t, qw, dvec[t], qw * dvec[t]) for t, qw in qvec.items() if t in dvec]
        contribs.sort(key=lambda c: (-c.contribution, c.token))
        return SparseExplanation(doc_id, float(sum(c.contribution for c in contribs)), contribs)

    @property
    def nbytes(self) -> int:
        """Bytes of both legs' postings matrices (the BM25 term frequencies and the sparse weights)."""
        return self.bm25.nbytes + self.sparse.nbytes + (self.passages.nbytes if len(self.passages) else 0)

    def count(self) -> int:
        return len(self._docs)

    def clear(self) -> None:
        self.bm25.clear()
        self.sparse.clear()
        self.passages.clear()
        self._owner = None
        self._docs.clear()
