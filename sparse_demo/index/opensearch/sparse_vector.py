"""A model's vectors in a real OpenSearch 3.x ``sparse_vector`` field (SEISMIC), measured against exact search.

:mod:`sparse_demo.index.sparse_vector_compat` reproduces in memory what the field's id folding and byte
quantization do; this module asks the engine itself. It writes the document vectors into a fresh index
of a node with the neural-search plugin (``index.sparse: true``, a ``sparse_vector`` field with the
``seismic`` method), force-merges it into one segment at least ``approximate_threshold`` documents long
(so every search takes the approximate SEISMIC path, as a large index does), runs every query as a
``neural_sparse`` query with ``query_tokens`` and ``method_parameters``, and compares the engine's
top-k with the exact top-k of the unfolded vectors; the index is deleted afterwards.

Token ids are folded by the client (``id % 32768``, equal folded ids of one vector merged by their
largest weight), exactly as neural-search folds them since PR #1926. OpenSearch 3.3 to 3.8.0 fold
modulo 65536 into a signed ``short`` instead, so a raw id whose fold lies in 32768..65535 (most of
XLM-R's 250,002) fails the shard at refresh (``NegativeArraySizeException``; the index turns red) and a
query holding one fails; ids below 32768 are stored as they are by both, so the folded vectors sent
here give the same index on every 3.x release.

Example (needs a node; see ``scripts/opensearch.sh`` with ``OPENSEARCH_VERSION=3.6.0 OPENSEARCH_NEURAL=1``)::

    from opensearchpy import OpenSearch
    agreement = engine_agreement(OpenSearch("http://127.0.0.1:9280"), doc_vectors, query_vectors, k=10)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from sparse_demo.index.sparse_vector_compat import (
    INGEST_CEILING,
    MODULUS,
    SEARCH_CEILING,
    Figures,
    SparseVectorLike,
    as_matrix,
    fold_matrix,
    quantize,
    top_k_ids,
    widen,
)
from sparse_demo.progress import Progress

__all__ = ["EngineAgreement", "SeismicSettings", "engine_agreement", "sparse_vector_support"]

#: The field every measured index holds its vectors in.
FIELD = "emb"
#: Index names start with this (a name that is found left over can be deleted by hand).
INDEX_PREFIX = "sparse-demo-sparse-vector-"


@dataclass(frozen=True)
class SeismicSettings:
    """The ``seismic`` method's index parameters and the query's ``method_parameters``.

    Defaults are the engine's (``SparseConstants`` of neural-search 3.6), except ``approximate_threshold``:
    None sets it to the number of documents, so the one merged segment is searched approximately.
    """

    n_postings: int | None = None  # engine default: 0.0005 * documents, at least 160
    cluster_ratio: float = 0.1
    summary_prune_ratio: float = 0.4
    approximate_threshold: int | None = None
    ingest_ceiling: float = INGEST_CEILING
    search_ceiling: float = SEARCH_CEILING
    top_n: int = 10
    heap_factor: float = 1.0

    def method(self, documents: int) -> dict[str, Any]:
        """The mapping's ``method`` object for an index of ``documents`` documents."""
        params: dict[str, Any] = {
            "cluster_ratio": self.cluster_ratio,
            "summary_prune_ratio": self.summary_prune_ratio,
            "approximate_threshold": self.approximate_threshold
            if self.approximate_threshold is not None
            else max(1, documents),
            "quantization_ceiling_ingest": self.ingest_ceiling,
            "quantization_ceiling_search": self.search_ceiling,
        }
        if self.n_postings is not None:
            params["n_postings"] = self.n_postings
        return {"name": "seismic", "parameters": params}


@dataclass(frozen=True)
class EngineAgreement(Figures):
    """The engine's top-k on a ``sparse_vector`` field against exact search (see :func:`engine_agreement`).

    Attributes:
        version: the node's OpenSearch version.
        approximate: whether the merged segment reached ``approximate_threshold`` (SEISMIC searched it).
        documents, queries: documents indexed; queries with a matching document (the others are skipped).
        k: the cut.
        recall_at_k: mean share of the exact top-k (unfolded vectors) the engine's top-k keeps: what
            folding, quantization and SEISMIC's candidate search cost together.
        top1_changed_share: share of queries whose first document differs from the exact search's.
        engine_only_recall_at_k: the engine's top-k against the exact top-k of the *folded and quantized*
            vectors: what SEISMIC's approximate candidate search alone loses.
        score_max_rel_error: largest relative difference between an engine score and the folded, byte-quantized
            dot product computed in memory (:func:`~sparse_demo.index.sparse_vector_compat.quantize`): how
            exactly the in-memory report models the engine.
        p50_ms, p95_ms: client-side latency of one search.
        ingest_s: writing, refreshing and merging the index.
        settings: the method and query parameters used.
        hits: the engine's ``(document row, score)`` list of every query, in order (not a figure: left out
            of :meth:`to_dict`).
    """

    version: str
    approximate: bool
    documents: int
    queries: int
    k: int
    recall_at_k: float | None
    top1_changed_share: float | None
    engine_only_recall_at_k: float | None
    score_max_rel_error: float | None
    p50_ms: float
    p95_ms: float
    ingest_s: float
    settings: dict[str, Any] = field(default_factory=dict)
    hits: tuple[tuple[tuple[int, float], ...], ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.pop("hits", None)
        out.update({f"setting_{k}": v for k, v in out.pop("settings").items()})
        return out


def _version(client: Any) -> tuple[str, tuple[int, ...]]:
    number = str(client.info()["version"]["number"])
    parts = tuple(int(p) for p in number.split("-")[0].split(".")[:3] if p.isdigit())
    return number, parts


def sparse_vector_support(client: Any) -> str | None:
    """None when the node can hold a ``sparse_vector`` field, else why not (a sentence for the user)."""
    number, parts = _version(client)
    plugins = {str(p.get("component", "")) for p in client.cat.plugins(format="json") or []}
    if parts < (3, 3):
        return f"OpenSearch {number} has no sparse_vector field (it came with 3.3; neural-search 3.6.0.0 runs here)"
    if not any("neural-search" in p for p in plugins):
        return f"OpenSearch {number} has no neural-search plugin, which provides the sparse_vector field"
    return None


def _bodies(rows: sp.csr_matrix) -> list[dict[str, float]]:
    return [
        {str(int(c)): float(w) for c, w in zip(rows.indices[a:b], rows.data[a:b], strict=True)}
        for a, b in zip(rows.indptr[:-1], rows.indptr[1:], strict=True)
    ]


def engine_agreement(  # noqa: PLR0913, PLR0915 - one measurement, in order
    client: Any,
    doc_vectors: Sequence[SparseVectorLike] | sp.spmatrix,
    query_vectors: Sequence[SparseVectorLike] | sp.spmatrix,
    k: int = 10,
    *,
    settings: SeismicSettings | None = None,
    bulk_size: int = 500,
    merge_timeout_s: float | Callable[[], float] = 7200.0,
    progress: Progress | None = None,
) -> EngineAgreement:
    """Index ``doc_vectors`` into a fresh ``sparse_vector`` index, search it with ``query_vectors``, compare.

    The force merge into one segment clusters every posting list (SEISMIC's build): seconds for a few
    hundred documents, over ten minutes for 100,000 on two cores; ``merge_timeout_s`` bounds the wait (a
    callable is asked when the merge starts, e.g. for the time left of a request's budget).

    Raises:
        ValueError: the node cannot hold a ``sparse_vector`` field (too old, no neural-search), no documents
            or no queries, or vectors the mapper would refuse (see ``compatibility_report``).
        RuntimeError: the engine did not index every document, or a search failed.
        TimeoutError: the merge took longer than ``merge_timeout_s``.
    """
    from opensearchpy import helpers
    from opensearchpy.exceptions import ConnectionTimeout

    settings = settings or SeismicSettings()
    why_not = sparse_vector_support(client)
    if why_not:
        raise ValueError(why_not)
    docs = as_matrix(doc_vectors, "document")
    queries = as_matrix(query_vectors, "query")
    if docs.shape[0] == 0 or queries.shape[0] == 0:
        raise ValueError("the engine check needs at least one document and one query")
    width = max(docs.shape[1], queries.shape[1])
    docs, queries = widen(docs, width), widen(queries, width)
    folded_docs, folded_queries = fold_matrix(docs, MODULUS), fold_matrix(queries, MODULUS)
    n = int(docs.shape[0])
    k = int(min(k, n))
    version = _version(client)[0]
    name = f"{INDEX_PREFIX}{uuid.uuid4().hex[:12]}"
    method = settings.method(n)
    say = progress or (lambda _fraction, _message: None)
    client.indices.create(
        index=name,
        body={
            "settings": {"index": {"sparse": True, "number_of_shards": 1, "number_of_replicas": 0}},
            "mappings": {"properties": {FIELD: {"type": "sparse_vector", "method": method}}},
        },
    )
    try:
        t0 = time.perf_counter()
        bodies = _bodies(folded_docs)
        for start in range(0, n, bulk_size):
            actions = [
                {"_index": name, "_id": str(i), "_source": {FIELD: bodies[i]}}
                for i in range(start, min(n, start + bulk_size))
            ]
            helpers.bulk(client, actions, refresh=False, request_timeout=120)
            say(0.6 * min(n, start + bulk_size) / n, f"indexed {min(n, start + bulk_size):,} of {n:,} documents")
        client.indices.refresh(index=name)
        say(0.6, "merging into one segment (SEISMIC clusters every posting list)")
        wait_s = float(merge_timeout_s() if callable(merge_timeout_s) else merge_timeout_s)
        try:
            client.indices.forcemerge(index=name, max_num_segments=1, request_timeout=wait_s)
        except ConnectionTimeout:
            raise TimeoutError(
                f"the engine's merge of {n:,} documents did not finish within {wait_s:g} s "
                "(the temporary index is deleted, which stops it)"
            ) from None
        client.indices.refresh(index=name)
        ingest_s = time.perf_counter() - t0
        count = int(client.count(index=name)["count"])
        if count != n:
            raise RuntimeError(f"the engine holds {count} of {n} documents after the merge")
        segments = client.cat.segments(index=name, format="json") or []
        largest = max((int(s.get("docs.count", 0)) for s in segments), default=0)
        threshold = int(method["parameters"]["approximate_threshold"])
        qbodies = _bodies(folded_queries)
        hits: list[list[tuple[int, float]]] = []
        took: list[float] = []
        method_parameters = {"k": k, "top_n": settings.top_n, "heap_factor": settings.heap_factor}
        for i, tokens in enumerate(qbodies):
            body = {
                "size": k,
                "_source": False,
                "query": {"neural_sparse": {FIELD: {"query_tokens": tokens, "method_parameters": method_parameters}}},
            }
            t = time.perf_counter()
            resp = client.search(index=name, body=body, request_timeout=60) if tokens else {"hits": {"hits": []}}
            took.append((time.perf_counter() - t) * 1000.0)
            if resp.get("_shards", {}).get("failed"):
                raise RuntimeError(f"search {i} failed on the engine: {resp['_shards']}")
            hits.append([(int(h["_id"]), float(h["_score"])) for h in resp["hits"]["hits"]])
            if i % 10 == 0:
                say(0.6 + 0.4 * (i + 1) / len(qbodies), f"searched {i + 1:,} of {len(qbodies):,} queries")
    finally:
        client.indices.delete(index=name, ignore_unavailable=True)

    exact = top_k_ids((queries @ docs.T).toarray(), k)
    qd = sp.csr_matrix(folded_docs, copy=True)
    qd.data = quantize(qd.data, settings.ingest_ceiling).astype(np.float64)
    qq = sp.csr_matrix(folded_queries, copy=True)
    qq.data = quantize(qq.data, settings.search_ceiling).astype(np.float64)
    predicted = (qq @ qd.T).toarray() * (settings.ingest_ceiling * settings.search_ceiling / 255.0**2)
    modelled = top_k_ids(predicted, k)
    recalls, changed, engine_only, errors = [], [], [], []
    for row, found in enumerate(hits):
        got = np.array([d for d, _ in found], dtype=np.int64)
        for d, score in found:
            if predicted[row, d] > 0:
                errors.append(abs(score - predicted[row, d]) / predicted[row, d])
        a = exact[row][exact[row] >= 0]
        if a.size:
            recalls.append(np.intersect1d(a, got).size / a.size)
            changed.append(got.size == 0 or got[0] != a[0])
        m = modelled[row][modelled[row] >= 0]
        if m.size:
            engine_only.append(np.intersect1d(m, got).size / m.size)

    def mean(values: list[float]) -> float | None:
        return float(np.mean(values)) if values else None

    return EngineAgreement(
        version=version,
        approximate=largest >= threshold,
        documents=n,
        queries=len(recalls),
        k=k,
        recall_at_k=mean(recalls),
        top1_changed_share=mean(changed),
        engine_only_recall_at_k=mean(engine_only),
        score_max_rel_error=float(max(errors)) if errors else None,
        p50_ms=float(np.percentile(took, 50)),
        p95_ms=float(np.percentile(took, 95)),
        ingest_s=ingest_s,
        settings={**method["parameters"], **method_parameters},
        hits=tuple(tuple(found) for found in hits),
    )
