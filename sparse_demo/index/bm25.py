"""In-memory BM25 with Lucene's formula, so scores match OpenSearch's.

Lucene 9 (OpenSearch 2.x) ``BM25Similarity`` with ``k1 = 1.2``, ``b = 0.75``::

    idf(t)     = log(1 + (N - n_t + 0.5) / (n_t + 0.5))
    score(q,d) = sum over query terms t of  idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))

``N`` counts documents with at least one term, ``n_t`` those containing ``t``, ``avgdl`` is
the mean length of those documents. A query term given twice counts twice (Lucene merges
duplicate ``SHOULD`` clauses into one clause with boost 2).

With ``opensearch_compat=True`` (the default) three details of OpenSearch's ``BM25``
similarity are reproduced so the scores equal OpenSearch's to float32 precision:

* OpenSearch wraps Lucene's formula in ``LegacyBM25Similarity``, which multiplies every
  score by ``k1 + 1`` (2.2): it changes no ranking, only the scale;
* the document length is stored lossily in one byte (``SmallFloat.intToByte4``): lengths
  below 24 are exact, longer ones keep 4 significant bits (e.g. 150 -> 144);
* per-term scores are computed in float32 as ``w - w / (1 + tf * normInverse)`` and summed
  in float64, then rounded to float32.

With ``opensearch_compat=False`` the formula above runs in float64 on exact lengths and
without the ``k1 + 1`` factor (what ``bm25s`` computes with ``method="lucene"``).

Example:
    >>> idx = BM25Index()
    >>> idx.add(["d1", "d2"], [["혈당/NNG", "검사/NNG"], ["검사/NNG"]])
    >>> [(h.id, round(h.score, 4)) for h in idx.search(["혈당/NNG"], k=5)]
    [('d1', 0.61)]
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from sparse_demo.index.base import Hit, validate_k

logger = logging.getLogger(__name__)

DEFAULT_K1 = 1.2
DEFAULT_B = 0.75


# --- Lucene's SmallFloat length encoding -------------------------------------------------


def _long_to_int4(i: int) -> int:
    num_bits = i.bit_length()
    if num_bits < 4:
        return i
    shift = num_bits - 4
    encoded = (i >> shift) & 0x07
    return encoded | ((shift + 1) << 3)


def _int4_to_long(i: int) -> int:
    bits = i & 0x07
    shift = (i >> 3) - 1
    return bits if shift == -1 else (bits | 0x08) << shift


_MAX_INT4 = _long_to_int4(2**31 - 1)
_NUM_FREE_VALUES = 255 - _MAX_INT4  # 24


def int_to_byte4(i: int) -> int:
    """Lucene ``SmallFloat.intToByte4``: a length in one (unsigned) byte."""
    if i < 0:
        raise ValueError(f"length must be >= 0, got {i}")
    if i < _NUM_FREE_VALUES:
        return i
    return _NUM_FREE_VALUES + _long_to_int4(i - _NUM_FREE_VALUES)


def byte4_to_int(b: int) -> int:
    """Lucene ``SmallFloat.byte4ToInt``: decode :func:`int_to_byte4`."""
    if b < _NUM_FREE_VALUES:
        return b
    return min(_NUM_FREE_VALUES + _int4_to_long(b - _NUM_FREE_VALUES), 2**31 - 1)


#: Decoded length for each of the 256 norm bytes (Lucene's ``LENGTH_TABLE``).
LENGTH_TABLE = np.array([byte4_to_int(i) for i in range(256)], dtype=np.int64)


def lucene_doc_length(length: int | np.ndarray) -> np.ndarray:
    """The document length as Lucene's norms remember it (vectorised)."""
    lengths = np.asarray(length, dtype=np.int64)
    uniq, inverse = np.unique(lengths, return_inverse=True)
    decoded = np.array([byte4_to_int(int_to_byte4(int(u))) for u in uniq.tolist()], dtype=np.int64)
    return decoded[inverse].reshape(lengths.shape)


# --- top-k with deterministic ties -------------------------------------------------------


#: Rows per block of the block-max prefilter in :func:`top_k_indices`.
_TOPK_BLOCK = 128


def top_k_indices(scores: np.ndarray, k: int, id_rank: np.ndarray) -> np.ndarray:
    """Indices of the ``k`` best positive scores, ties broken by ``id_rank`` (ascending).

    On large arrays a block-max prefilter avoids partitioning every score: the ``k``-th
    largest of the per-block maxima is a lower bound of the ``k``-th best score (the ``k``
    blocks holding those maxima hold at least ``k`` rows at or above it), so only rows at or
    above it can be in the top ``k`` (every tie of the ``k``-th score included).

    Args:
        scores: One score per row.
        k: How many to return (fewer when fewer rows score > 0).
        id_rank: Rank of each row's id in sorted id order.
    """
    n = scores.size
    n_blocks = n // _TOPK_BLOCK
    if n_blocks >= 4 * k:
        block_max = scores[: n_blocks * _TOPK_BLOCK].reshape(n_blocks, _TOPK_BLOCK).max(axis=1)
        bound = np.partition(block_max, n_blocks - k)[n_blocks - k]
        cand = np.flatnonzero(scores >= bound) if bound > 0 else np.flatnonzero(scores > 0)
    else:
        cand = np.flatnonzero(scores > 0)
    if cand.size > k:
        vals = scores[cand]
        kth = np.partition(vals, vals.size - k)[vals.size - k]
        cand = cand[vals >= kth]
    order = np.lexsort((id_rank[cand], -scores[cand]))
    return cand[order[:k]]


# --- row storage shared by the BM25 and sparse indexes ------------------------------------


def csc_nbytes(matrix: sp.spmatrix | sp.sparray) -> int:
    """Bytes a compressed sparse matrix holds: its values, indices and pointers (the one index-size rule).

    Every memory-index size of the package is this count of the postings matrix the memory backend
    keeps (:attr:`CsrRowStore.nbytes`), whatever the dtypes scipy chose.
    """
    return int(matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes)


class CsrRowStore:
    """Documents as rows of a sparse matrix over a growing vocabulary.

    Rows are appended in chunks; :meth:`matrix` consolidates them into one CSC matrix
    (``n_docs x vocab``, ascending rows within each column) that doubles as postings lists.
    Re-adding an id replaces the old row (dropped at the next consolidation).
    """

    def __init__(self, dtype: type = np.float32):
        self.dtype = dtype
        self.vocab: dict[str, int] = {}
        self.tokens: list[str] = []
        self._ids: list[str] = []
        self._alive: list[bool] = []
        self._row_of: dict[str, int] = {}
        self._chunks: list[sp.csr_matrix] = []
        self._csc: sp.csc_matrix | None = None
        self._id_rank: np.ndarray = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._row_of)

    def token_id(self, token: str) -> int:
        tid = self.vocab.get(token)
        if tid is None:
            tid = self.vocab[token] = len(self.tokens)
            self.tokens.append(token)
        return tid

    def add_rows(self, ids: Sequence[str], indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> None:
        """Append rows; ``cols`` are ids from :meth:`token_id`, duplicates within a row are summed."""
        n = len(ids)
        if n == 0:
            return
        # Copies: sum_duplicates() sorts in place and must not reorder the caller's arrays.
        chunk = sp.csr_matrix(
            (
                np.array(vals, dtype=self.dtype, copy=True),
                np.array(cols, dtype=np.int32, copy=True),
                np.array(indptr, dtype=np.int64, copy=True),
            ),
            shape=(n, max(len(self.tokens), 1)),
        )
        chunk.sum_duplicates()
        for doc_id in ids:
            old = self._row_of.get(doc_id)
            if old is not None:
                self._alive[old] = False
            self._row_of[doc_id] = len(self._ids)
            self._ids.append(doc_id)
            self._alive.append(True)
        self._chunks.append(chunk)

    @property
    def dirty(self) -> bool:
        return bool(self._chunks) or self._csc is None

    @property
    def nbytes(self) -> int:
        """Bytes of the consolidated postings matrix (:func:`csc_nbytes`; 0 when empty)."""
        return csc_nbytes(self.matrix()) if len(self) else 0

    def matrix(self) -> sp.csc_matrix:
        """The consolidated ``n_docs x vocab`` CSC matrix of live rows."""
        if not self.dirty:
            return self._csc
        v = max(len(self.tokens), 1)
        parts = []
        if self._csc is not None and self._csc.shape[0]:
            parts.append(self._csc.tocsr())
        parts.extend(self._chunks)
        for i, part in enumerate(parts):
            if part.shape[1] != v:
                parts[i] = sp.csr_matrix((part.data, part.indices, part.indptr), shape=(part.shape[0], v))
        csr = sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, v), dtype=self.dtype)
        if not all(self._alive):
            keep = np.flatnonzero(np.array(self._alive, dtype=bool))
            csr = csr[keep]
            self._ids = [self._ids[i] for i in keep.tolist()]
            self._alive = [True] * len(self._ids)
            self._row_of = {d: i for i, d in enumerate(self._ids)}
        self._csc = csr.tocsc()
        self._csc.sort_indices()
        self._chunks = []
        ids = np.array(self._ids, dtype=object)
        self._id_rank = np.empty(len(ids), dtype=np.int64)
        self._id_rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))
        return self._csc

    @property
    def ids(self) -> list[str]:
        self.matrix()
        return self._ids

    @property
    def id_rank(self) -> np.ndarray:
        self.matrix()
        return self._id_rank

    def row_of(self, doc_id: str) -> int | None:
        self.matrix()
        return self._row_of.get(doc_id)


# --- the index ---------------------------------------------------------------------------


class BM25Index:
    """BM25 over pre-tokenised documents (e.g. Kiwi ``form/tag`` morphemes).

    Documents are added in batches; statistics and postings are rebuilt lazily on the next
    search. Re-adding an id replaces the document.

    Args:
        k1: Term-frequency saturation (Lucene default 1.2).
        b: Length normalisation (Lucene default 0.75).
        opensearch_compat: Reproduce OpenSearch exactly: the ``k1 + 1`` factor, one-byte
            length norms and float32 arithmetic.
    """

    def __init__(self, k1: float = DEFAULT_K1, b: float = DEFAULT_B, *, opensearch_compat: bool = True):
        if not (k1 >= 0 and math.isfinite(k1)):
            raise ValueError(f"k1 must be a finite number >= 0, got {k1}")
        if not (0.0 <= b <= 1.0):
            raise ValueError(f"b must be in [0, 1], got {b}")
        self.k1 = float(k1)
        self.b = float(b)
        self.opensearch_compat = opensearch_compat
        self._store = CsrRowStore(dtype=np.float32)
        self._stats: dict[str, np.ndarray] | None = None
        self._n_docs = 0
        self._avgdl = 0.0

    # -- adding ----------------------------------------------------------------------------

    def add(self, ids: Sequence[str], term_lists: Sequence[Sequence[str]]) -> None:
        """Add documents given as lists of terms (whitespace-free strings)."""
        if len(ids) != len(term_lists):
            raise ValueError(f"{len(ids)} ids but {len(term_lists)} term lists")
        token_id = self._store.token_id
        lens = [len(t) for t in term_lists]
        indptr = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        cols = np.fromiter((token_id(t) for terms in term_lists for t in terms), dtype=np.int32, count=int(indptr[-1]))
        self._store.add_rows(ids, indptr, cols, np.ones(cols.size, dtype=np.float32))
        self._stats = None

    def add_encoded(
        self,
        ids: Sequence[str],
        indptr: np.ndarray,
        term_ids: np.ndarray,
        vocab: Sequence[str],
    ) -> None:
        """Add documents as a CSR of term ids (fast path for large synthetic corpora).

        Args:
            ids: Document ids, one per row.
            indptr: Row pointers into ``term_ids`` (length ``len(ids) + 1``).
            term_ids: Term occurrences (repeats allowed), indices into ``vocab``.
            vocab: Term strings for the ids used in ``term_ids``.
        """
        indptr = np.asarray(indptr, dtype=np.int64)
        term_ids = np.asarray(term_ids, dtype=np.int64)
        if indptr.size != len(ids) + 1:
            raise ValueError(f"indptr must have {len(ids) + 1} entries, got {indptr.size}")
        used = np.unique(term_ids)
        mapping = np.zeros(int(used.max()) + 1 if used.size else 1, dtype=np.int32)
        for u in used.tolist():
            mapping[u] = self._store.token_id(vocab[u])
        self._store.add_rows(ids, indptr, mapping[term_ids], np.ones(term_ids.size, dtype=np.float32))
        self._stats = None

    def clear(self) -> None:
        """Remove every document."""
        self.__init__(self.k1, self.b, opensearch_compat=self.opensearch_compat)

    def __len__(self) -> int:
        return len(self._store)

    @property
    def nbytes(self) -> int:
        """Bytes of the postings matrix (term frequencies per document)."""
        return self._store.nbytes

    # -- building --------------------------------------------------------------------------

    def _build(self) -> dict[str, np.ndarray]:
        if self._stats is not None and not self._store.dirty:
            return self._stats
        csc = self._store.matrix()
        lengths = np.asarray(csc.sum(axis=1)).ravel().astype(np.int64)
        df = np.diff(csc.indptr).astype(np.int64)
        n_docs = int((lengths > 0).sum())
        avgdl64 = lengths.sum() / n_docs if n_docs else 1.0
        idf64 = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
        k1, b = self.k1, self.b
        if self.opensearch_compat:
            f32 = np.float32
            avgdl = f32(avgdl64)
            dl = lucene_doc_length(lengths).astype(np.float32)
            # Lucene: cache[i] = 1f / (k1 * ((1 - b) + b * LENGTH_TABLE[i] / avgdl)), in float32.
            norm_inv = f32(1.0) / (f32(k1) * ((f32(1.0) - f32(b)) + f32(b) * dl / avgdl))
            idf = idf64.astype(np.float32)
        else:
            norm_inv = 1.0 / (k1 * ((1.0 - b) + b * lengths / avgdl64))
            idf = idf64
        norm_inv = np.asarray(norm_inv)
        # Eager per-posting scores for a query term given once (the common case), computed
        # exactly as the lazy path below does, so a query is mostly gathers and adds.
        term_of = np.repeat(np.arange(df.size), df)
        tf, rows = csc.data, csc.indices
        if self.opensearch_compat:
            w = (np.float32(1.0) * (np.float32(1.0) + np.float32(k1))) * idf[term_of]
            posting = w - w / (np.float32(1.0) + tf * norm_inv[rows])
        else:
            x = tf * norm_inv[rows]
            posting = idf[term_of] * x / (1.0 + x)
        self._stats = {"idf": idf, "norm_inv": norm_inv, "lengths": lengths, "posting": posting}
        self._n_docs = n_docs
        self._avgdl = float(avgdl64)
        return self._stats

    @property
    def n_docs(self) -> int:
        """Documents with at least one term (Lucene's ``docCount``)."""
        self._build()
        return self._n_docs

    @property
    def avgdl(self) -> float:
        """Mean length of the documents counted in :attr:`n_docs`."""
        self._build()
        return self._avgdl

    # -- searching -------------------------------------------------------------------------

    def _accumulate(self, terms: Sequence[str]) -> np.ndarray:
        """Raw scores: float64 sums of per-term scores (float32 terms in OpenSearch mode).

        Each query term's postings are scattered with ``np.add.at`` on ``intp`` row indices
        and float64 values, numpy's fast path (rows are unique within a posting list, so the
        result equals ``acc[rows] += part``). In OpenSearch mode every per-term score is a
        float32 and their float64 sum is exact, as in Lucene's disjunction scorers, so the
        order of the terms does not change the result.
        """
        st = self._build()
        csc = self._store.matrix()
        acc = np.zeros(csc.shape[0], dtype=np.float64)
        counts: dict[int, int] = {}
        for t in terms:
            tid = self._store.vocab.get(t)
            if tid is not None:
                counts[tid] = counts.get(tid, 0) + 1
        indptr, docs, tf = csc.indptr, csc.indices, csc.data
        norm_inv, idf, posting = st["norm_inv"], st["idf"], st["posting"]
        k1 = self.k1
        for tid, c in counts.items():
            s, e = int(indptr[tid]), int(indptr[tid + 1])
            if s == e:
                continue
            rows = docs[s:e].astype(np.intp)
            if c == 1:
                part = posting[s:e]
            elif self.opensearch_compat:
                # LegacyBM25Similarity: boost * (1 + k1); BoostQuery(boost=c) for repeats.
                w = (np.float32(c) * (np.float32(1.0) + np.float32(k1))) * idf[tid]
                part = w - w / (np.float32(1.0) + tf[s:e] * norm_inv[rows])
            else:
                x = tf[s:e] * norm_inv[rows]
                part = c * idf[tid] * x / (1.0 + x)
            np.add.at(acc, rows, part.astype(np.float64, copy=False))
        return acc

    def scores(self, terms: Sequence[str]) -> np.ndarray:
        """BM25 score of every document, in :meth:`doc_ids` order (float64 array)."""
        acc = self._accumulate(terms)
        if self.opensearch_compat:  # Lucene returns the double sum cast to float
            acc = acc.astype(np.float32).astype(np.float64)
        return acc

    def search(self, terms: Sequence[str], k: int = 10) -> list[Hit]:
        """Top ``k`` documents by BM25 (score > 0 only), ties broken by id."""
        validate_k(k)
        if len(self._store) == 0 or not terms:
            return []
        scores = self._accumulate(terms)
        if self.opensearch_compat:  # rank on the float32 scores, as OpenSearch does
            scores = scores.astype(np.float32)
        ids = self._store.ids
        top = top_k_indices(scores, k, self._store.id_rank)
        return [Hit(ids[i], float(scores[i]), r) for r, i in enumerate(top.tolist(), start=1)]

    def doc_ids(self) -> list[str]:
        """Ids in row order (insertion order, replaced documents moved to the end)."""
        return list(self._store.ids)
