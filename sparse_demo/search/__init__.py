"""Search service: build and cache indexes, run BM25 / sparse / hybrid searches, explain.

The data flows one way through the modules, text -> vector -> index -> hits:

* :mod:`~sparse_demo.search.corpus_files` reads uploaded corpora (files, BEIR folders, zips);
* :mod:`~sparse_demo.search.encode` turns texts into BM25 terms and pruned sparse vectors;
* :mod:`~sparse_demo.search.build` loads them into a backend (``"memory"`` or ``"opensearch"``),
  keyed by corpus content, model fingerprint, BM25 analyzer and backend;
* :mod:`~sparse_demo.search.query` runs one query (``"bm25"``, ``"sparse"`` or ``"hybrid"``);
* :mod:`~sparse_demo.search.explain` breaks a sparse score into per-token products;
* :mod:`~sparse_demo.search.session` caches built indexes (an LRU bounded by count and by an
  estimate of bytes) and falls back to memory when OpenSearch is down;
* :mod:`~sparse_demo.search.weights` picks the hybrid weight (the user's, the Evaluate tab's tuned
  one for this model and corpus, the model card's, or 0.5).

HTML rendering of hits lives in :mod:`sparse_demo.ui.render`.

Pruning. Sparse vectors are pruned to their top ``doc_top_k`` tokens (documents, default
512) and ``query_top_k`` tokens (queries, default 1024 = OpenSearch's default clause limit),
the same way in both backends, so their scores agree. Trained SPLADE models activate far
fewer tokens, so pruning rarely bites them; an untrained model activates most of its
vocabulary and would otherwise need gigabytes. Pruning that happened is reported in the
index/search notes. Set either to ``None`` for no pruning.

Example:
    >>> from sparse_demo.corpus import Corpus, Document
    >>> corpus = Corpus("toy", [Document("d1", "당뇨병 치료 방법"), Document("d2", "전세 보증금")])
    >>> index = build_index(corpus, None)          # BM25 only: no model needed
    >>> [h.id for h in search(index, "당뇨병 치료", method="bm25").hits]
    ['d1']
"""

from __future__ import annotations

from sparse_demo.search.build import IndexKey, IndexStats, SearchIndex, build_index
from sparse_demo.search.corpus_files import (
    SAMPLE_CORPUS,
    corpus_fingerprint,
    corpus_id,
    load_corpus_file,
    load_sample_corpus,
)
from sparse_demo.search.encode import EncodedCorpus, encode_corpus, encode_query
from sparse_demo.search.explain import Explanation, explain
from sparse_demo.search.options import (
    BACKENDS,
    DEFAULT_DOC_TOP_K,
    DEFAULT_DOC_WINDOWS,
    DEFAULT_QUERY_TOP_K,
    FUSIONS,
    METHODS,
)
from sparse_demo.search.query import (
    GOLD_MARK,
    SearchHit,
    SearchOutcome,
    as_mapping,
    frame_rows,
    gold_query,
    search,
)
from sparse_demo.search.session import SearchSession, opensearch_status
from sparse_demo.search.weights import (
    DEFAULT_WEIGHT,
    TunedWeight,
    TunedWeights,
    VisitorWeights,
    WeightChoice,
    choose_weight,
    model_fingerprint,
    recommended_weight,
    resolve_weight,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_DOC_TOP_K",
    "DEFAULT_DOC_WINDOWS",
    "DEFAULT_QUERY_TOP_K",
    "DEFAULT_WEIGHT",
    "FUSIONS",
    "GOLD_MARK",
    "METHODS",
    "SAMPLE_CORPUS",
    "EncodedCorpus",
    "Explanation",
    "IndexKey",
    "IndexStats",
    "SearchHit",
    "SearchIndex",
    "SearchOutcome",
    "SearchSession",
    "TunedWeight",
    "TunedWeights",
    "VisitorWeights",
    "WeightChoice",
    "as_mapping",
    "build_index",
    "choose_weight",
    "corpus_fingerprint",
    "corpus_id",
    "encode_corpus",
    "encode_query",
    "explain",
    "frame_rows",
    "gold_query",
    "load_corpus_file",
    "load_sample_corpus",
    "model_fingerprint",
    "opensearch_status",
    "recommended_weight",
    "resolve_weight",
    "search",
]
