"""What OpenSearch's ``sparse_vector`` field (neural sparse ANN, SEISMIC) does to a model's token ids.

The neural-search plugin's ``sparse_vector`` field (introduced in OpenSearch 3.3) stores every vector
as a ``short[]`` of token ids and a ``byte[]`` of weights, so it folds each integer token id into a
small range and byte-quantizes each weight. A vocabulary larger than that range (XLM-R: 250,002 ids)
puts several tokens on one folded id; the engine then keeps the largest weight of the tokens of one
vector that land together. This module reproduces that on our own vectors, in memory, and measures
what it costs. Read from ``opensearch-project/neural-search`` (commit ``936d3c4d``, 2026-08-04):

* ``sparse/mapper/SparseVectorFieldMapper.java`` ``parseCreateField``: each key must parse as a
  non-negative Java ``int`` (``Integer.parseInt(feature)``; ``tokenIndex < 0`` is refused), and is
  written with its float weight;
* ``sparse/data/SparseVector.java``: ``prepareTokenForShortType(token)`` is ``token % MODULUS_FOR_SHORT``;
  ``processListItems`` sorts by the folded id and, for equal folded ids, "merge[s] by taking the
  maximum value" (of the already quantized, unsigned bytes); ``tokens[i] = (short) ...``;
* ``sparse/common/SparseConstants.java``: ``MODULUS_FOR_SHORT = 32768`` since PR #1926 (commit
  ``936d3c4d``, after the 3.8.0.0 tag). Tags 3.3.0.0 to 3.8.0.0 have ``65536``: a token folding into
  [32768, 65535] became a negative ``short`` (``toDenseVector`` then throws, ``dotProduct`` indexes
  out of range), so there only [0, 32767] worked, as the PR says;
* ``sparse/query/SparseAnnQueryBuilder.java`` ``preprocessQueryTokens``: query tokens are parsed the
  same way, folded with the same function and merged with ``Math.max`` (on the float weights); the
  scorer reads the folded query as a dense byte vector quantized with ``quantization_ceiling_search``;
* ``sparse/quantization/ByteQuantizer.java``: ``quantize(v) = round(clamp(v, 0, ceil) * 255 / ceil)``,
  ceilings ``quantization_ceiling_ingest`` (default 3.0) and ``quantization_ceiling_search``
  (default 16.0); the score is the integer dot product of the bytes times ``ceil_ingest * ceil_search / 255**2``.

Two limits of the engine that this module does not model, from the same reading: a segment with fewer
than ``approximate_threshold`` documents (default 1,000,000; ``PredicateUtils.shouldRunSeisPredicate``)
is searched by the plain ``neural_sparse`` query on the unfolded ``rank_features`` terms, so folding only
applies in large segments; and SEISMIC's candidate lists are looked up by the folded query id as a term
(``SeismicBaseScorer.initialize`` seeks ``new BytesRef(token)`` for the folded keys) while the posting
lists are keyed by the document's original id strings, so a query id at or above the modulus does not
reach its own posting list (reported as :attr:`CompatibilityReport.query_mass_over_modulus`).

The search figures compare an exact dot-product search over the unfolded vectors with the same search
over vectors folded as the engine folds them (and, separately, also byte-quantized as it quantizes them),
over every document: they measure folding and quantization, not SEISMIC's approximate candidate search.

Example:
    >>> fold_id(40000), fold_id(65535), fold_id(131074)
    (7232, 32767, 2)
    >>> v = vocabulary_folding(250_002)
    >>> v.shared_slots, v.colliding_ids, v.max_ids_per_slot
    (32768, 250002, 8)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp

#: ``SparseConstants.MODULUS_FOR_SHORT`` in neural-search since PR #1926 (folded ids are 0..32767).
MODULUS = 32_768
#: ``MODULUS_FOR_SHORT`` in the released tags 3.3.0.0 to 3.8.0.0 (ids folding to 32768..65535 broke).
RELEASED_MODULUS = 65_536
#: ``DEFAULT_QUANTIZATION_CEILING_INGEST`` and ``DEFAULT_QUANTIZATION_CEILING_SEARCH``.
INGEST_CEILING = 3.0
SEARCH_CEILING = 16.0
#: The largest token id the mapper accepts (``Integer.parseInt`` of a Java ``int``).
MAX_TOKEN_ID = 2**31 - 1
#: Scores closer than this count as ties (broken by document order in both searches), so float
#: summation order cannot reorder equal scores.
SCORE_DECIMALS = 9
_QUERY_CHUNK = 256


class SparseVectorLike(Protocol):
    """Anything with ``token_ids`` and ``weights`` arrays (:class:`sparse_demo.encoder.SparseVector`)."""

    token_ids: Any
    weights: Any


# ---------------------------------------------------------------------------------------------- folding
def fold_id(token_id: int, modulus: int = MODULUS) -> int:
    """The id OpenSearch's ``sparse_vector`` stores for ``token_id``: ``token_id % modulus``.

    ``SparseVector.prepareTokenForShortType`` in neural-search
    (``src/main/java/org/opensearch/neuralsearch/sparse/data/SparseVector.java``):
    ``return token % MODULUS_FOR_SHORT;`` with ``MODULUS_FOR_SHORT = 32768``
    (``sparse/common/SparseConstants.java``; 65536 in releases 3.3 to 3.8). The mapper and the query
    builder refuse negative ids, and a key beyond a Java ``int`` does not parse.

    Example:
        >>> fold_id(32767), fold_id(32768), fold_id(250001)
        (32767, 0, 20625)

    Raises:
        ValueError: a negative id or one above ``2**31 - 1``, or a modulus < 1.
    """
    if isinstance(token_id, bool) or not isinstance(token_id, (int, np.integer)):
        raise ValueError(f"token ids are integers, got {token_id!r}")
    return int(fold_ids(np.asarray([token_id]), modulus)[0])


def fold_ids(token_ids: Any, modulus: int = MODULUS) -> np.ndarray:
    """:func:`fold_id` of every id of an array (int64 result, same shape).

    Example:
        >>> fold_ids([1, 65537, 131074, 2, 65539]).tolist()
        [1, 1, 2, 2, 3]

    Raises:
        ValueError: an id that is negative or above ``2**31 - 1``, a non-integer array, or a modulus < 1.
    """
    _check_modulus(modulus)
    ids = np.asarray(token_ids)
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"token ids are integers, got an array of {ids.dtype}")
    ids = ids.astype(np.int64, copy=False)
    if ids.size and (ids.min() < 0 or ids.max() > MAX_TOKEN_ID):
        bad = int(ids[(ids < 0) | (ids > MAX_TOKEN_ID)].flat[0])
        raise ValueError(f"token id {bad} is outside what sparse_vector accepts (0 to {MAX_TOKEN_ID})")
    return ids % modulus


def quantize(weights: Any, ceiling: float) -> np.ndarray:
    """``ByteQuantizer.quantize`` of every weight, as the unsigned byte values 0..255 (int64).

    ``value = max(0, min(ceil, value)); value = value * 255 / ceil; (byte) Math.round(value)``, in float32
    as Java computes it; ``Math.round`` rounds halves up.

    Example:
        >>> quantize([0.0, 1.0, 3.0, 9.0], INGEST_CEILING).tolist()
        [0, 85, 255, 255]
    """
    if not ceiling > 0:
        raise ValueError(f"the quantization ceiling must be positive, got {ceiling}")
    c = np.float32(ceiling)
    v = np.clip(np.asarray(weights, dtype=np.float32), np.float32(0), c)
    v = (v * np.float32(255)) / c
    return np.floor(v.astype(np.float64) + 0.5).astype(np.int64)


def fold_matrix(weights: sp.spmatrix, modulus: int = MODULUS) -> sp.csr_matrix:
    """Rows of ``weights`` folded as the engine folds one vector: columns ``% modulus``, equal folded
    columns of a row merged by their maximum (``SparseVector.processListItems``).

    The result has ``min(columns, modulus)`` columns.

    Example:
        >>> m = sp.csr_matrix(([1.0, 2.0, 0.5], ([0, 0, 0], [3, 32771, 40003])), shape=(1, 40004))
        >>> fold_matrix(m).toarray()[0, [3, 7235]].tolist()
        [2.0, 0.5]
    """
    _check_modulus(modulus)
    coo = sp.coo_matrix(weights)
    width = min(coo.shape[1], modulus)
    if coo.nnz == 0:
        return sp.csr_matrix(coo.shape[:1] + (width,), dtype=np.float64)
    rows = coo.row.astype(np.int64)
    slots = coo.col.astype(np.int64) % modulus
    order = np.lexsort((slots, rows))
    rows, slots, data = rows[order], slots[order], np.asarray(coo.data, dtype=np.float64)[order]
    starts = np.flatnonzero(np.r_[True, (rows[1:] != rows[:-1]) | (slots[1:] != slots[:-1])])
    merged = np.maximum.reduceat(data, starts)
    return sp.csr_matrix((merged, (rows[starts], slots[starts])), shape=(coo.shape[0], width))


# ---------------------------------------------------------------------------------------------- results
def _rounded(value: Any, digits: int = 4) -> Any:
    if isinstance(value, float):
        return round(value, digits)
    return value


@dataclass(frozen=True)
class Figures:
    """Shared display of a flat dataclass of figures: :meth:`to_dict` and :meth:`to_frame`."""

    def to_dict(self) -> dict[str, Any]:
        """Every figure at full precision (nested agreements flattened with a prefix; None where not computed)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Figures):
                out.update({f"{f.name}_{k}": v for k, v in value.to_dict().items()})
            elif isinstance(value, tuple):
                out[f.name] = list(value)
            else:
                out[f.name] = value
        return out

    def to_frame(self, digits: int = 4) -> pd.DataFrame:
        """``figure``, ``value`` (floats rounded to ``digits`` for reading) and ``meaning``, one row per figure."""
        items = [(k, v) for k, v in self.to_dict().items() if not isinstance(v, list)]
        return pd.DataFrame(
            {
                "figure": [k for k, _ in items],
                "value": pd.Series([_rounded(v, digits) for _, v in items], dtype=object),
                "meaning": [_MEANINGS.get(k, "") for k, _ in items],
            }
        )


@dataclass(frozen=True)
class VocabularyFolding(Figures):
    """How a vocabulary of ``vocab_size`` ids (0..vocab_size-1) folds: a property of its size alone.

    Attributes:
        vocab_size: ids in the vocabulary.
        modulus: the folding modulus.
        slots: folded ids the vocabulary reaches (``min(vocab_size, modulus)``).
        shared_slots: folded ids that two or more vocabulary ids share.
        colliding_ids: vocabulary ids that share their folded id with another vocabulary id.
        colliding_share: ``colliding_ids / vocab_size``.
        max_ids_per_slot: the most vocabulary ids on one folded id.
        released_overflow_ids: ids with ``id % 65536 >= 32768``, which releases 3.3 to 3.8 turned into
            negative ``short`` tokens (unusable there).
    """

    vocab_size: int
    modulus: int
    slots: int
    shared_slots: int
    colliding_ids: int
    colliding_share: float
    max_ids_per_slot: int
    released_overflow_ids: int


def vocabulary_folding(vocab_size: int, modulus: int = MODULUS) -> VocabularyFolding:
    """:class:`VocabularyFolding` of ids ``0..vocab_size-1`` (no model needed).

    Example:
        >>> v = vocabulary_folding(40_000)
        >>> v.shared_slots, v.colliding_ids, v.released_overflow_ids
        (7232, 14464, 7232)

    Raises:
        ValueError: ``vocab_size`` < 1 or above ``2**31``, or ``modulus`` < 1.
    """
    _check_modulus(modulus)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive integer, got {vocab_size!r}")
    if vocab_size > MAX_TOKEN_ID + 1:
        raise ValueError(f"vocab_size {vocab_size} exceeds the ids sparse_vector accepts (0 to {MAX_TOKEN_ID})")
    n = int(vocab_size)
    # ids per folded slot r < min(n, modulus): ceil((n - r) / modulus)
    r = np.arange(min(n, modulus), dtype=np.int64)
    per_slot = (n - r + modulus - 1) // modulus
    shared = per_slot > 1
    colliding = int(per_slot[shared].sum())
    return VocabularyFolding(
        vocab_size=n,
        modulus=int(modulus),
        slots=int(r.size),
        shared_slots=int(shared.sum()),
        colliding_ids=colliding,
        colliding_share=colliding / n,
        max_ids_per_slot=int(per_slot.max()),
        released_overflow_ids=_released_overflow_count(n),
    )


@dataclass(frozen=True)
class SearchAgreement(Figures):
    """Top-``k`` of a folded search against the exact search, over the queries with a matching document.

    Attributes:
        queries: queries with at least one document of positive exact score (the others are skipped).
        k: the cut.
        recall_at_k: mean share of the exact top-k (positive scores only) that the folded top-k keeps.
        overlap_at_k: mean ``|exact top-k & folded top-k| / k``.
        top1_changed_share: share of queries whose first document differs.
    """

    queries: int
    k: int
    recall_at_k: float | None
    overlap_at_k: float | None
    top1_changed_share: float | None


@dataclass(frozen=True)
class CompatibilityReport(Figures):
    """What storing a corpus (and querying it) in a ``sparse_vector`` field costs; see :func:`compatibility_report`.

    Corpus figures count the token ids the document vectors use; ``colliding`` means sharing a folded id
    with a *different* used id. ``folded`` compares the exact search with the search over folded vectors
    (weights merged by max, as the engine merges them); ``quantized`` also byte-quantizes both sides with
    the engine's default ceilings (what the engine's integer score ranks). Both are None without queries.
    """

    modulus: int
    documents: int
    distinct_ids: int
    colliding_ids: int
    shared_slots: int
    colliding_mass_share: float
    merged_mass_share: float
    documents_with_merge_share: float
    ids_over_modulus_share: float
    released_overflow_mass_share: float
    doc_weights_over_ingest_ceiling_share: float
    max_doc_weight: float
    vocabulary: VocabularyFolding
    queries: int = 0
    query_cross_collision_mass_share: float | None = None
    query_mass_over_modulus: float | None = None
    folded: SearchAgreement | None = None
    quantized: SearchAgreement | None = None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for name in ("folded", "quantized"):
            if getattr(self, name) is None:  # keep every key, so the JSON has one shape
                out.update({f"{name}_{f.name}": None for f in fields(SearchAgreement)})
                out.pop(name, None)
        return out


_MEANINGS: dict[str, str] = {
    "vocab_size": "ids in the vocabulary",
    "modulus": "folding modulus (token_id % modulus)",
    "slots": "folded ids the vocabulary reaches",
    "shared_slots": "folded ids holding two or more ids",
    "colliding_ids": "ids sharing their folded id with another id",
    "colliding_share": "share of vocabulary ids that collide",
    "max_ids_per_slot": "most ids on one folded id",
    "released_overflow_ids": "ids that OpenSearch 3.3-3.8 (modulus 65536) turned into negative tokens",
    "documents": "document vectors",
    "distinct_ids": "distinct token ids the documents use",
    "colliding_mass_share": "share of document L1 mass on colliding ids",
    "merged_mass_share": "share of document L1 mass lost by max-merging within a document",
    "documents_with_merge_share": "share of documents with two of their own ids on one folded id",
    "ids_over_modulus_share": "share of used ids at or above the modulus",
    "released_overflow_mass_share": "share of document mass on ids broken in OpenSearch 3.3-3.8",
    "doc_weights_over_ingest_ceiling_share": "share of document weights above the ingest ceiling (clipped to 255)",
    "max_doc_weight": "largest document weight",
    "queries": "query vectors",
    "query_cross_collision_mass_share": "share of query mass on ids whose folded id a different document id holds",
    "query_mass_over_modulus": "share of query mass on ids >= modulus (SEISMIC seeks the folded id's posting list)",
    "folded_queries": "queries with a matching document (folding only)",
    "folded_k": "top-k cut",
    "folded_recall_at_k": "recall@k of folded search vs exact search",
    "folded_overlap_at_k": "mean |exact & folded top-k| / k",
    "folded_top1_changed_share": "share of queries whose top-1 changes (folding only)",
    "quantized_queries": "queries with a matching document (folding + byte quantization)",
    "quantized_k": "top-k cut",
    "quantized_recall_at_k": "recall@k of folded + quantized search vs exact search",
    "quantized_overlap_at_k": "mean |exact & folded+quantized top-k| / k",
    "quantized_top1_changed_share": "share of queries whose top-1 changes (folding + quantization)",
}
_MEANINGS.update(  # the engine measurement (sparse_demo.index.opensearch.sparse_vector.EngineAgreement)
    {
        "version": "OpenSearch version of the node",
        "approximate": "whether SEISMIC searched the merged segment (at least approximate_threshold documents)",
        "k": "top-k cut",
        "recall_at_k": "recall@k of the engine's top-k vs exact search on the unfolded vectors",
        "top1_changed_share": "share of queries whose top-1 differs from exact search",
        "engine_only_recall_at_k": "recall@k of the engine vs exact search on folded, quantized vectors",
        "score_max_rel_error": "largest relative gap between an engine score and the in-memory folded, quantized score",
        "p50_ms": "median latency of one search (client side)",
        "p95_ms": "95th percentile latency of one search",
        "ingest_s": "seconds to write, refresh and merge the index",
        "setting_n_postings": "seismic: postings kept per token",
        "setting_cluster_ratio": "seismic: clusters per posting list / its length",
        "setting_summary_prune_ratio": "seismic: share of a cluster summary's mass kept",
        "setting_approximate_threshold": "seismic: documents a segment needs for the approximate path",
        "setting_quantization_ceiling_ingest": "seismic: document weight mapped to byte 255",
        "setting_quantization_ceiling_search": "seismic: query weight mapped to byte 255",
        "setting_k": "method_parameters.k",
        "setting_top_n": "method_parameters.top_n: query tokens SEISMIC reads",
        "setting_heap_factor": "method_parameters.heap_factor",
    }
)
for _f in ("slots", "shared_slots", "colliding_ids", "colliding_share", "max_ids_per_slot", "released_overflow_ids"):
    _MEANINGS[f"vocabulary_{_f}"] = "vocabulary: " + _MEANINGS[_f]
_MEANINGS["vocabulary_vocab_size"] = "vocabulary: " + _MEANINGS["vocab_size"]
_MEANINGS["vocabulary_modulus"] = _MEANINGS["modulus"]

#: What the report does not model, said with every report.
ENGINE_NOTES: tuple[str, ...] = (
    "Folding applies only in segments with at least approximate_threshold documents (default 1,000,000); "
    "smaller segments are searched exactly on the unfolded rank_features terms.",
    "Search figures rank every document exactly on the folded vectors; SEISMIC's approximate candidate "
    "search (n_postings, cluster_ratio, top_n, heap_factor) can only lose more.",
)


# ---------------------------------------------------------------------------------------------- report
def compatibility_report(
    doc_vectors: Sequence[SparseVectorLike] | sp.spmatrix,
    query_vectors: Sequence[SparseVectorLike] | sp.spmatrix | None = None,
    vocab_size: int | None = None,
    k: int = 10,
    *,
    modulus: int = MODULUS,
    ingest_ceiling: float = INGEST_CEILING,
    search_ceiling: float = SEARCH_CEILING,
) -> CompatibilityReport:
    """What folding ``doc_vectors`` (and ``query_vectors``) into ``modulus`` ids costs.

    Args:
        doc_vectors: document search vectors (``token_ids``, positive ``weights``; ids unique per vector),
            or a ``[documents, vocabulary]`` sparse matrix of them.
        query_vectors: query search vectors (or a matrix); with them, the search figures.
        vocab_size: the model's vocabulary size (the vocabulary figures); None: the largest used id + 1.
        k: the top-k cut of the search figures.
        modulus: the folding modulus (32768; 65536 reproduces releases 3.3 to 3.8 only below 32768).
        ingest_ceiling: ``quantization_ceiling_ingest`` for the quantized search.
        search_ceiling: ``quantization_ceiling_search`` for the quantized search.

    Returns:
        The :class:`CompatibilityReport`.

    Raises:
        ValueError: an id outside 0..2**31-1 or not below ``vocab_size``, a repeated id in one vector, a
            weight that is not a positive finite number, ``k`` < 1, or no document.

    Example:
        >>> from sparse_demo.encoder import SparseVector
        >>> def vec(pairs):
        ...     ids, ws = zip(*pairs)
        ...     return SparseVector(np.array(ids), np.array(ws, dtype=np.float32), np.zeros(len(ids), dtype=np.int64))
        >>> docs = [vec([(5, 1.0), (32773, 2.0)]), vec([(6, 1.0)])]
        >>> r = compatibility_report(docs, [vec([(6, 1.0)])], vocab_size=40_000)
        >>> r.colliding_ids, r.shared_slots, r.merged_mass_share, r.folded.recall_at_k
        (2, 1, 0.25, 1.0)
    """
    _check_modulus(modulus)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    docs = as_matrix(doc_vectors, "document")
    queries = None if query_vectors is None else as_matrix(query_vectors, "query")
    if docs.shape[0] == 0:
        raise ValueError("no document vectors: the report needs at least one document")
    used_max = max(docs.shape[1], queries.shape[1] if queries is not None else 0)
    if vocab_size is None:
        vocab_size = max(used_max, 1)
    elif used_max > vocab_size:
        raise ValueError(
            f"token id {used_max - 1} is not below vocab_size {vocab_size}; the vectors come from another model"
        )
    docs = widen(docs, vocab_size)
    queries = None if queries is None else widen(queries, vocab_size)

    total_mass = float(docs.data.sum())
    col_mass = np.asarray(docs.sum(axis=0)).ravel()
    used = np.flatnonzero(np.diff(docs.tocsc().indptr))
    slot_of_used = used % modulus
    per_slot = np.bincount(slot_of_used, minlength=min(vocab_size, modulus))
    colliding = used[per_slot[slot_of_used] > 1]
    folded_docs = fold_matrix(docs, modulus)
    folded_mass = float(folded_docs.data.sum())
    merged_rows = np.diff(docs.indptr) > np.diff(folded_docs.indptr)
    released_overflow = used[(used % RELEASED_MODULUS) >= 32_768]

    def share(part: float, whole: float) -> float:
        return part / whole if whole > 0 else 0.0

    report: dict[str, Any] = {
        "modulus": int(modulus),
        "documents": int(docs.shape[0]),
        "distinct_ids": int(used.size),
        "colliding_ids": int(colliding.size),
        "shared_slots": int((per_slot > 1).sum()),
        "colliding_mass_share": share(float(col_mass[colliding].sum()), total_mass),
        "merged_mass_share": share(total_mass - folded_mass, total_mass),
        "documents_with_merge_share": float(merged_rows.mean()),
        "ids_over_modulus_share": share(float((used >= modulus).sum()), float(used.size)),
        "released_overflow_mass_share": share(float(col_mass[released_overflow].sum()), total_mass),
        "doc_weights_over_ingest_ceiling_share": share(float((docs.data > ingest_ceiling).sum()), float(docs.nnz)),
        "max_doc_weight": float(docs.data.max()) if docs.nnz else 0.0,
        "vocabulary": vocabulary_folding(vocab_size, modulus),
        "notes": ENGINE_NOTES,
    }
    if queries is not None:
        q_mass = float(queries.data.sum())
        q_cols = queries.indices.astype(np.int64)
        q_slots = q_cols % modulus
        # a different document id on the query id's folded slot: the slot holds more used ids than
        # the query id itself accounts for
        in_docs = np.zeros(vocab_size, dtype=bool)
        in_docs[used] = True
        others = per_slot[q_slots] - in_docs[q_cols]
        report.update(
            queries=int(queries.shape[0]),
            query_cross_collision_mass_share=share(float(queries.data[others > 0].sum()), q_mass),
            query_mass_over_modulus=share(float(queries.data[q_cols >= modulus].sum()), q_mass),
            folded=_agreement(docs, queries, folded_docs, fold_matrix(queries, modulus), k),
            quantized=_agreement(
                docs,
                queries,
                _quantized(folded_docs, ingest_ceiling),
                _quantized(fold_matrix(queries, modulus), search_ceiling),
                k,
            ),
        )
    return CompatibilityReport(**report)


# ---------------------------------------------------------------------------------------------- helpers
def _check_modulus(modulus: int) -> None:
    if isinstance(modulus, bool) or not isinstance(modulus, (int, np.integer)) or modulus < 1:
        raise ValueError(f"modulus must be a positive integer, got {modulus!r}")


def _released_overflow_count(n: int) -> int:
    """Ids ``0..n-1`` with ``id % 65536 >= 32768``."""
    full, rest = divmod(n, RELEASED_MODULUS)
    return full * 32_768 + max(0, rest - 32_768)


def as_matrix(vectors: Sequence[SparseVectorLike] | sp.spmatrix, what: str) -> sp.csr_matrix:
    """A CSR matrix (float64) of the vectors, as wide as the largest id + 1, checked as the mapper checks keys."""
    if sp.issparse(vectors):
        m = sp.csr_matrix(vectors, dtype=np.float64)
        m.sum_duplicates()
        m.eliminate_zeros()
        if m.nnz and (not np.all(np.isfinite(m.data)) or m.data.min() <= 0):
            raise ValueError(f"{what} weights must be positive finite numbers")
        if m.shape[1] > MAX_TOKEN_ID + 1:
            raise ValueError(f"{what} vectors are wider than the ids sparse_vector accepts (0 to {MAX_TOKEN_ID})")
        if m.nnz:
            last = int(m.indices.max()) + 1
            m = m[:, :last] if last < m.shape[1] else m
        else:
            m = sp.csr_matrix((m.shape[0], 0), dtype=np.float64)
        return m
    ids_list, w_list, lengths = [], [], []
    for n, v in enumerate(vectors):
        ids = np.asarray(v.token_ids).ravel()
        ws = np.asarray(v.weights, dtype=np.float64).ravel()
        if ids.shape != ws.shape:
            raise ValueError(f"{what} vector {n} has {ids.size} ids and {ws.size} weights")
        ids = fold_ids(ids, MAX_TOKEN_ID + 1)  # the id checks only (no id reaches this modulus)
        if ws.size and (not np.all(np.isfinite(ws)) or ws.min() <= 0):
            raise ValueError(f"{what} vector {n} has a weight that is not a positive finite number")
        if np.unique(ids).size != ids.size:
            raise ValueError(f"{what} vector {n} repeats a token id (sparse_vector refuses a key twice)")
        ids_list.append(ids)
        w_list.append(ws)
        lengths.append(ids.size)
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    cols = np.concatenate(ids_list) if ids_list else np.zeros(0, dtype=np.int64)
    data = np.concatenate(w_list) if w_list else np.zeros(0, dtype=np.float64)
    width = int(cols.max()) + 1 if cols.size else 0
    return sp.csr_matrix((data, cols, indptr), shape=(len(lengths), width))


def widen(m: sp.csr_matrix, width: int) -> sp.csr_matrix:
    """``m`` widened to ``width`` columns (``width`` >= its own; the data is shared, not copied)."""
    if m.shape[1] == width:
        return m
    return sp.csr_matrix((m.data, m.indices, m.indptr), shape=(m.shape[0], width))


def _quantized(m: sp.csr_matrix, ceiling: float) -> sp.csr_matrix:
    out = m.copy().astype(np.float64)
    out.data = quantize(out.data, ceiling).astype(np.float64)  # integer products: exact in float64
    return out


def top_k_ids(scores: np.ndarray, k: int) -> np.ndarray:
    """``[queries, k]`` document indices by descending score, ties by document order; -1 where score <= 0."""
    s = np.round(scores, SCORE_DECIMALS)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(s, order, axis=1)
    return np.where(top > 0, order, -1)


def _agreement(
    docs: sp.csr_matrix, queries: sp.csr_matrix, folded_docs: sp.csr_matrix, folded_queries: sp.csr_matrix, k: int
) -> SearchAgreement:
    """Exact top-k (unfolded vectors) against the top-k of the folded vectors, query by query."""
    k = int(min(k, docs.shape[0]))
    recalls, overlaps, changed = [], [], []
    dt, fdt = docs.T.tocsr(), folded_docs.T.tocsr()
    for start in range(0, queries.shape[0], _QUERY_CHUNK):
        stop = start + _QUERY_CHUNK
        exact = top_k_ids((queries[start:stop] @ dt).toarray(), k)
        folded = top_k_ids((folded_queries[start:stop] @ fdt).toarray(), k)
        for a_row, b_row in zip(exact, folded):
            a = a_row[a_row >= 0]
            if a.size == 0:
                continue
            b = b_row[b_row >= 0]
            hit = np.intersect1d(a, b).size
            recalls.append(hit / a.size)
            overlaps.append(hit / k)
            changed.append(b.size == 0 or b[0] != a[0])
    n = len(recalls)
    return SearchAgreement(
        queries=n,
        k=k,
        recall_at_k=float(np.mean(recalls)) if n else None,
        overlap_at_k=float(np.mean(overlaps)) if n else None,
        top1_changed_share=float(np.mean(changed)) if n else None,
    )


__all__ = [
    "ENGINE_NOTES",
    "INGEST_CEILING",
    "MAX_TOKEN_ID",
    "MODULUS",
    "RELEASED_MODULUS",
    "SEARCH_CEILING",
    "CompatibilityReport",
    "Figures",
    "SearchAgreement",
    "SparseVectorLike",
    "VocabularyFolding",
    "as_matrix",
    "compatibility_report",
    "fold_id",
    "fold_ids",
    "fold_matrix",
    "quantize",
    "top_k_ids",
    "vocabulary_folding",
    "widen",
]
