"""The index layout (settings and mappings) and the query DSL of the two legs.

* ``bm25_terms``: Kiwi ``form/tag`` terms joined by spaces, analysed by a whitespace
  tokenizer (nothing else) with an explicit BM25 similarity (k1 1.2, b 0.75); one shard,
  so BM25 statistics are index-wide like the memory backend's;
* ``sparse``: ``rank_features``, queried by a ``bool.should`` of ``rank_feature`` clauses
  with ``linear: {}`` and ``boost = query weight`` (exactly the dot product, with stored
  weights kept to 9 significant bits), or ``neural_sparse`` + ``query_tokens`` where the
  neural-search plugin is installed (the same score);
* ``passages``: ``nested`` documents, one per window of a long document, each with its own
  ``rank_features`` (``passages.sparse``); in passages mode the sparse leg is a ``nested`` query with
  ``score_mode: max``, so a document scores its best window and is returned once;
* ``doc_id`` (keyword) breaks score ties by id;
* ``_meta`` records the BM25 analyzer spec (``bm25_analyzer``) and term format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_QUERY_CLAUSES",
    "TERMS_FORMAT",
    "bm25_query",
    "check_sparse_clauses",
    "TwoPhase",
    "hybrid_pipeline",
    "hybrid_query",
    "sparse_pipeline",
    "index_body",
    "sparse_query_dsl",
]

#: Lucene's default ``indices.query.bool.max_clause_count`` in OpenSearch 2.x.
MAX_QUERY_CLAUSES = 1024
#: What ``bm25_terms`` holds, recorded in the mapping's ``_meta``.
TERMS_FORMAT = "kiwi form/tag morphemes, space-joined"


def index_body(analyzer_spec: str, shards: int = 1, replicas: int = 0) -> dict[str, Any]:
    """Settings and mappings of an index whose BM25 terms come from ``analyzer_spec``, in ``shards`` primary
    shards with ``replicas`` copies each (with several shards the backend searches BM25 with
    ``dfs_query_then_fetch``, so its statistics stay index-wide)."""
    return {
        "settings": {
            "index": {"number_of_shards": int(shards), "number_of_replicas": int(replicas)},
            "analysis": {
                "tokenizer": {"morpheme_ws": {"type": "whitespace", "max_token_length": 4096}},
                "analyzer": {"morpheme_whitespace": {"type": "custom", "tokenizer": "morpheme_ws"}},
            },
            "similarity": {"lucene_bm25": {"type": "BM25", "k1": 1.2, "b": 0.75}},
        },
        "mappings": {
            "_meta": {"bm25_analyzer": analyzer_spec, "bm25_terms": TERMS_FORMAT},
            "dynamic": "strict",
            "properties": {
                "doc_id": {"type": "keyword"},
                "title": {"type": "text", "index": False},
                "text": {"type": "text", "index": False},
                "bm25_terms": {"type": "text", "analyzer": "morpheme_whitespace", "similarity": "lucene_bm25"},
                "sparse": {"type": "rank_features"},
                # a long document indexed as passages: one nested document per window (MaxP)
                "passages": {"type": "nested", "properties": {"sparse": {"type": "rank_features"}}},
            },
        },
    }


def bm25_query(terms: Sequence[str]) -> dict[str, Any]:
    """A ``match`` query on the space-joined terms (at most :data:`MAX_QUERY_CLAUSES` distinct).

    Raises:
        ValueError: too many distinct terms for one boolean query.
    """
    distinct = len(set(terms))
    if distinct > MAX_QUERY_CLAUSES:
        raise ValueError(f"query has {distinct} distinct terms; OpenSearch allows at most {MAX_QUERY_CLAUSES}")
    return {"match": {"bm25_terms": {"query": " ".join(terms)}}}


def check_sparse_clauses(n_tokens: int) -> None:
    """Reject a query vector with more tokens than one boolean query may hold.

    Raises:
        ValueError: ``n_tokens`` exceeds :data:`MAX_QUERY_CLAUSES`.
    """
    if n_tokens > MAX_QUERY_CLAUSES:
        raise ValueError(
            f"query vector has {n_tokens} tokens; OpenSearch allows at most {MAX_QUERY_CLAUSES} "
            "clauses (indices.query.bool.max_clause_count): keep the top tokens only"
        )


def sparse_query_dsl(encoded: Mapping[str, float], neural: bool, passages: bool = False) -> dict[str, Any]:
    """The sparse leg's query for already encoded feature names and their query weights.

    Args:
        encoded: Feature name (see :func:`~sparse_demo.index.opensearch.encode_feature_name`)
            to query weight.
        neural: Use ``neural_sparse`` (plugin installed) instead of ``rank_feature`` clauses.
        passages: Score each document by its best passage (a ``nested`` query, ``score_mode: max``).

    Raises:
        ValueError: more tokens than one boolean query may hold.
    """
    check_sparse_clauses(len(encoded))
    field = "passages.sparse" if passages else "sparse"
    if neural:
        query: dict[str, Any] = {"neural_sparse": {field: {"query_tokens": dict(encoded)}}}
    else:
        query = {
            "bool": {
                "should": [
                    {"rank_feature": {"field": f"{field}.{name}", "linear": {}, "boost": w}}
                    for name, w in encoded.items()
                ]
            }
        }
    if passages:
        return {"nested": {"path": "passages", "score_mode": "max", "query": query}}
    return query


def hybrid_query(legs: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """neural-search's ``hybrid`` query over the legs, in order (a missing leg matches nothing, so it still
    takes its place and its weight, as in client-side fusion)."""
    return {"hybrid": {"queries": [leg if leg is not None else {"match_none": {}} for leg in legs]}}


@dataclass(frozen=True)
class TwoPhase:
    """neural-search's ``neural_sparse_two_phase_processor``: the query's tokens above ``prune_ratio`` times
    its largest weight retrieve, and the rest only rescore the best ``expansion_rate * size`` hits (at most
    ``max_window_size``). Documents that only the low-weight tokens match are not returned; the ones
    returned keep their full score.

    Example:
        >>> TwoPhase(0.4, 5.0, 10000).name
        'tp-0.4000-5.00-10000'
    """

    prune_ratio: float = 0.4
    expansion_rate: float = 5.0
    max_window_size: int = 10_000

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.prune_ratio) < 1.0:
            raise ValueError(f"two-phase prune ratio must be in [0, 1), got {self.prune_ratio!r}")
        if not float(self.expansion_rate) >= 1.0:
            raise ValueError(f"two-phase expansion rate must be >= 1, got {self.expansion_rate!r}")
        if isinstance(self.max_window_size, bool) or not 50 <= int(self.max_window_size) <= 100_000:
            raise ValueError(f"two-phase max window size must be from 50 to 100000, got {self.max_window_size!r}")

    def check_size(self, size: int) -> None:
        """The engine refuses a window (``expansion_rate * size``) over ``max_window_size``: say so first."""
        if float(self.expansion_rate) * size > int(self.max_window_size):
            raise ValueError(
                f"two-phase window {self.expansion_rate:g} × {size} hits = {float(self.expansion_rate) * size:,.0f} "
                f"exceeds max_window_size {int(self.max_window_size):,}: raise it or lower the expansion rate"
            )

    @property
    def name(self) -> str:
        return f"tp-{self.prune_ratio:.4f}-{self.expansion_rate:.2f}-{int(self.max_window_size)}"

    def processor(self) -> dict[str, Any]:
        return {
            "neural_sparse_two_phase_processor": {
                "enabled": True,
                "two_phase_parameter": {
                    "prune_ratio": float(self.prune_ratio),
                    "expansion_rate": float(self.expansion_rate),
                    "max_window_size": int(self.max_window_size),
                },
            }
        }


def sparse_pipeline(two_phase: TwoPhase) -> tuple[str, dict[str, Any]]:
    """``(name, body)`` of the search pipeline that runs the sparse leg in two phases."""
    body = {"description": "sparse_demo two-phase neural_sparse", "request_processors": [two_phase.processor()]}
    return f"sparse-demo-{two_phase.name}", body


def hybrid_pipeline(
    fusion: str, weights: Sequence[float] | None = None, rank_constant: int = 60, two_phase: TwoPhase | None = None
) -> tuple[str, dict[str, Any]]:
    """``(name, body)`` of the search pipeline that fuses a ``hybrid`` query on the cluster, as
    :func:`sparse_demo.index.fusion.fuse` does in Python.

    * ``minmax``: the ``normalization-processor`` (``min_max`` normalization, ``arithmetic_mean``
      combination with the legs' weights);
    * ``rrf``: the ``score-ranker-processor`` (reciprocal rank fusion, ``rank_constant``; unweighted, as
      neural-search 2.19 has it).

    Both answer with a ``hybrid_score_explanation`` response processor when searched with ``explain``.
    The name encodes the settings, so one pipeline serves every search with them.

    Example:
        >>> hybrid_pipeline("minmax", (0.7, 0.3))[0]
        'sparse-demo-hybrid-minmax-0.7000-0.3000'
    """
    if fusion == "minmax":
        if not weights:
            raise ValueError("min-max fusion needs the legs' weights")
        name = "sparse-demo-hybrid-minmax-" + "-".join(f"{w:.4f}" for w in weights)
        processor = {
            "normalization-processor": {
                "normalization": {"technique": "min_max"},
                "combination": {"technique": "arithmetic_mean", "parameters": {"weights": [float(w) for w in weights]}},
            }
        }
    elif fusion == "rrf":
        if weights:
            raise ValueError("OpenSearch 2.19's RRF (score-ranker-processor) takes no weights")
        name = f"sparse-demo-hybrid-rrf-{int(rank_constant)}"
        processor = {
            "score-ranker-processor": {"combination": {"technique": "rrf", "rank_constant": int(rank_constant)}}
        }
    else:
        raise ValueError(f"unknown fusion {fusion!r}: use minmax or rrf")
    body: dict[str, Any] = {
        "description": f"sparse_demo server-side hybrid fusion ({fusion})",
        "phase_results_processors": [processor],
        "response_processors": [{"hybrid_score_explanation": {}}],
    }
    if two_phase is not None:
        body["request_processors"] = [two_phase.processor()]
        name += f"-{two_phase.name}"
    return name, body
