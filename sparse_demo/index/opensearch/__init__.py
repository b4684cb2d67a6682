"""OpenSearch backend (opensearch-py): BM25 over morpheme terms and ``rank_features`` sparse.

Index layout (one shard, so BM25 statistics are index-wide like the memory backend's):

* ``bm25_terms``: the Kiwi ``form/tag`` terms joined by spaces, analysed by a whitespace
  tokenizer (nothing else) with an explicit BM25 similarity (k1 1.2, b 0.75);
* ``sparse``: ``rank_features``; the query is a ``bool.should`` of ``rank_feature``
  clauses with ``linear: {}`` and ``boost = query weight``, which scores exactly the dot
  product of the query with the stored vector (Lucene keeps 9 significant bits of each
  stored weight, a relative error below 2^-8). With the neural-search plugin installed the
  same score comes from ``neural_sparse`` + ``query_tokens``, used automatically;
* ``doc_id`` (keyword) breaks score ties by id, as the memory backend does;
* the mapping's ``_meta`` records the BM25 analyzer spec (``bm25_analyzer``), so an index
  reused with another analyzer is detected (:meth:`OpenSearchBackend.index_meta`).

Feature names cannot contain ``.`` (it splits field paths), so tokens are percent-encoded
reversibly by :func:`encode_feature_name` (``.``, ``%``, whitespace, control characters and
a few query-syntax characters).

Connection settings come from ``OPENSEARCH_URL`` (default ``http://127.0.0.1:9200``),
``OPENSEARCH_USER``, ``OPENSEARCH_PASSWORD`` and ``OPENSEARCH_VERIFY_CERTS``; credentials
are never logged or put in messages. A node that cannot be reached raises
:class:`OpenSearchUnavailable` whose message is meant for users as is.

Modules, one concept each:

* :mod:`~sparse_demo.index.opensearch.settings`: :class:`ConnectionSettings` from the environment;
* :mod:`~sparse_demo.index.opensearch.client`: the opensearch-py client and readable failures;
* :mod:`~sparse_demo.index.opensearch.errors`: the exceptions users see;
* :mod:`~sparse_demo.index.opensearch.features`: token names as ``rank_features`` keys;
* :mod:`~sparse_demo.index.opensearch.mapping`: index settings/mappings and the query DSL;
* :mod:`~sparse_demo.index.opensearch.backend`: :class:`OpenSearchBackend`.
"""

from __future__ import annotations

from sparse_demo.index.opensearch.backend import DEFAULT_INDEX, OpenSearchBackend
from sparse_demo.index.opensearch.client import START_HINT, guarded_call, make_client
from sparse_demo.index.opensearch.errors import AnalyzerMismatchError, IndexingError, OpenSearchUnavailable
from sparse_demo.index.opensearch.features import decode_feature_name, encode_feature_name
from sparse_demo.index.opensearch.mapping import MAX_QUERY_CLAUSES, TERMS_FORMAT, TwoPhase, index_body
from sparse_demo.index.opensearch.settings import DEFAULT_URL, ConnectionSettings

__all__ = [
    "DEFAULT_INDEX",
    "DEFAULT_URL",
    "MAX_QUERY_CLAUSES",
    "START_HINT",
    "TERMS_FORMAT",
    "AnalyzerMismatchError",
    "ConnectionSettings",
    "IndexingError",
    "OpenSearchBackend",
    "OpenSearchUnavailable",
    "TwoPhase",
    "decode_feature_name",
    "encode_feature_name",
    "guarded_call",
    "index_body",
    "make_client",
]
