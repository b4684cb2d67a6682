"""The OpenSearch search backend: bulk indexing, the BM25 and sparse legs, explanations.

See :mod:`sparse_demo.index.opensearch` for the index layout and connection settings.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sparse_demo.index.base import (
    Hit,
    IndexDocument,
    SearchResult,
    SparseExplanation,
    TokenContribution,
    validate_document,
    validate_k,
    validate_sparse_vector,
)
from sparse_demo.index.memory import lucene_feature_value
from sparse_demo.index.opensearch.client import guarded_call, make_client
from sparse_demo.index.opensearch.errors import AnalyzerMismatchError, IndexingError
from sparse_demo.index.opensearch.features import decode_feature_name, encode_feature_name
from sparse_demo.index.opensearch.mapping import (
    TwoPhase,
    bm25_query,
    check_sparse_clauses,
    hybrid_pipeline,
    hybrid_query,
    index_body,
    sparse_pipeline,
    sparse_query_dsl,
)
from sparse_demo.index.opensearch.settings import ConnectionSettings
from sparse_demo.korean import DEFAULT_ANALYZER, BM25Analyzer, get_analyzer
from sparse_demo.progress import Progress, counted

__all__ = ["DEFAULT_INDEX", "OpenSearchBackend"]

logger = logging.getLogger(__name__)

DEFAULT_INDEX = "sparse-demo"
_INDEX_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]{0,254}$")
#: What OpenSearch says when a search lost a node mid-way (worth one retry on the copies left).
_NODE_LOST_MARKERS = (
    "search_context_missing",
    "disconnected",
    "node_not_connected",
    "NodeNotConnected",
    "no_shard_available",
    "node_closed",
)
#: A leaf of Lucene's explanation of a ``rank_feature`` / ``neural_sparse`` clause.
_LINEAR_RE = re.compile(
    r"^Linear function on the (?P<field>\S+) field for the (?P<feature>.+) feature, computed as w \* S"
)

T = TypeVar("T")


class OpenSearchBackend:
    """Search backend on an OpenSearch index.

    Args:
        index: Index name (lowercase letters, digits, ``.``, ``_``, ``-``, ``+``).
        settings: Connection settings; default from the environment.
        client: An existing ``opensearchpy.OpenSearch`` client (settings then unused).
        use_neural: Force ``neural_sparse`` (True) or ``rank_feature`` (False); None detects
            the neural-search plugin on first sparse query.
        chunk_size: Documents per bulk request.
        max_retries: Bulk retries of documents rejected with 429 (with back-off).
        shards: Primary shards of an index this backend creates (BM25 then runs as
            ``dfs_query_then_fetch`` so its statistics stay index-wide).
        replicas: Replicas of each shard (a cluster keeps answering when a node holding a copy is lost).
        analyzer: The BM25 analyzer spec the terms come from
            (:func:`sparse_demo.korean.get_analyzer`). It is stored in the index mapping's
            ``_meta`` when the index is created (read it back with :meth:`index_meta` /
            :meth:`index_analyzer`); adding to or searching an index recorded with another
            analyzer raises :class:`AnalyzerMismatchError`.

    Attributes:
        analyzer: The :class:`~sparse_demo.korean.BM25Analyzer` (``analyzer.spec`` is its
            canonical spec).
    """

    name = "opensearch"

    def __init__(
        self,
        index: str = DEFAULT_INDEX,
        settings: ConnectionSettings | None = None,
        *,
        client: Any = None,
        use_neural: bool | None = None,
        chunk_size: int = 500,
        max_retries: int = 3,
        analyzer: str | BM25Analyzer = DEFAULT_ANALYZER,
        shards: int = 1,
        replicas: int = 0,
    ):
        if not isinstance(index, str) or not _INDEX_NAME_RE.match(index) or index in (".", ".."):
            raise ValueError(
                f"invalid index name {index!r}: use lowercase letters, digits, '.', '_', '-', '+' "
                "(not starting with '_', '-' or '+')"
            )
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        for what, n, low in (("shards", shards, 1), ("replicas", replicas, 0)):
            if isinstance(n, bool) or not isinstance(n, int) or not low <= n <= 64:
                raise ValueError(f"{what} must be an integer from {low} to 64, got {n!r}")
        self.shards, self.replicas = shards, replicas
        self._pipelines: set[str] = set()
        self.analyzer = get_analyzer(analyzer)
        self.index = index
        self.settings = settings or ConnectionSettings.from_env()
        self._client = client
        self._use_neural = use_neural
        self.chunk_size = chunk_size
        self.max_retries = max_retries
        self._index_ready = False
        self._meta_checked = False
        self._passages: bool | None = None  # whether the index holds passages (read from its _meta)

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The ``opensearchpy.OpenSearch`` client (made from :attr:`settings` on first use)."""
        if self._client is None:
            self._client = make_client(self.settings)
        return self._client

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run a client call, turning connection/auth failures into OpenSearchUnavailable."""
        return guarded_call(self.settings, self.index, what, fn)

    def _search_call(self, what: str, fn: Callable[[], T]) -> T:
        """:meth:`_call` for a search, retried (twice, after 0.2 s and 0.6 s) when it failed, or answered from
        fewer shards than it asked, because a node went away mid-search: the cluster answers the retry from
        the shard copies left (a lost node's search contexts are gone, and OpenSearch reports that as a 500 or
        503, or as failed shards in a 200 answer, not as a connection error)."""
        from opensearchpy import exceptions as exc

        for delay in (0.2, 0.6, None):
            try:
                res = self._call(what, fn)
                failed = (res.get("_shards") or {}).get("failed", 0) if isinstance(res, dict) else 0
                if failed and delay is not None:  # a shard copy went away mid-search: ask the copies left
                    logger.warning("%s: %d shard(s) failed mid-search; retrying in %.1f s", what, failed, delay)
                    time.sleep(delay)
                    continue
                return res
            except exc.TransportError as e:
                transient = e.status_code in (500, 503) and any(
                    marker in str(e.info or e.error) for marker in _NODE_LOST_MARKERS
                )
                if not transient or delay is None:
                    raise
                logger.warning("%s failed as a node left (%s); retrying in %.1f s", what, e.error, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def ping(self) -> dict[str, Any]:
        """Cluster info (name, version); raises OpenSearchUnavailable when down."""
        return self._call("connect", lambda: self.client.info())

    def health(self, index_only: bool = False) -> dict[str, Any]:
        """``_cluster/health`` (status, nodes, unassigned shards) of the cluster, or of this backend's index
        alone; raises OpenSearchUnavailable."""
        kwargs = {"index": self.index} if index_only else {}
        return self._call("read the cluster health", lambda: self.client.cluster.health(**kwargs))

    def health_note(self) -> str | None:
        """A line for users when this backend's index is not green (a node lost, copies unassigned), else None."""
        try:
            h = self.health(index_only=True)
        except Exception as e:  # noqa: BLE001 - a note, never a failure of the search that asks for it
            return f"OpenSearch cluster health could not be read: {e}"
        status = str(h.get("status", "unknown"))
        if status == "green":
            return None
        unassigned = int(h.get("unassigned_shards", 0) or 0)
        what = "every primary shard answers; " if status == "yellow" else "some primary shards are missing; "
        return (
            f"OpenSearch index {self.index!r} is {status} ({h.get('number_of_nodes', '?')} node(s) up, "
            f"{unassigned} shard copies unassigned): {what}results "
            f"{'are complete' if status == 'yellow' else 'may be incomplete'}."
        )

    def has_neural_plugin(self) -> bool:
        """Whether the cluster has the neural-search plugin (``neural_sparse`` query)."""
        if self._use_neural is None:
            plugins = self._call("list plugins", lambda: self.client.cat.plugins(format="json"))
            names = {str(p.get("component", "")) for p in plugins or []}
            self._use_neural = any("neural-search" in n for n in names)
            logger.info("OpenSearch neural-search plugin %s", "found" if self._use_neural else "not installed")
        return bool(self._use_neural)

    def index_body(self) -> dict[str, Any]:
        """Settings and mappings of the index (see :mod:`sparse_demo.index.opensearch.mapping`)."""
        return index_body(self.analyzer.spec, self.shards, self.replicas)

    def index_meta(self) -> dict[str, Any]:
        """The index mapping's ``_meta`` (``{}`` when the index does not exist or has none).

        Indexes created by this backend record ``bm25_analyzer`` (the analyzer's canonical
        spec) and ``bm25_terms`` (the term format).
        """
        from opensearchpy import exceptions as exc

        try:
            res = self._call("read the index mapping", lambda: self.client.indices.get_mapping(index=self.index))
        except exc.NotFoundError:
            return {}
        for body in (res or {}).values():
            return dict(body.get("mappings", {}).get("_meta", {}) or {})
        return {}

    def index_analyzer(self) -> str | None:
        """The analyzer spec recorded with the index, or None (no index, or one made without it)."""
        spec = self.index_meta().get("bm25_analyzer")
        return spec if isinstance(spec, str) else None

    def check_analyzer(self) -> None:
        """Raise :class:`AnalyzerMismatchError` when the index records another analyzer.

        An index without a recorded analyzer (made by an older version) passes with a warning.
        """
        recorded = self.index_analyzer()
        if recorded is None:
            if self.count():
                logger.warning("index %s records no BM25 analyzer; assuming %r", self.index, self.analyzer.spec)
        elif recorded != self.analyzer.spec:
            raise AnalyzerMismatchError(
                f"OpenSearch index {self.index!r} holds BM25 terms of analyzer {recorded!r}, not "
                f"{self.analyzer.spec!r}: rebuild the index (clear it) or use analyzer={recorded!r}"
            )
        self._meta_checked = True

    def ensure_index(self) -> None:
        """Create the index with :meth:`index_body` when it does not exist.

        Raises:
            AnalyzerMismatchError: the existing index records another analyzer.
        """
        if self._index_ready:
            return
        exists = self._call("check the index", lambda: self.client.indices.exists(index=self.index))
        if exists:
            self.check_analyzer()
        else:
            from opensearchpy import exceptions as exc

            try:
                self._call(
                    "create the index", lambda: self.client.indices.create(index=self.index, body=self.index_body())
                )
                logger.info("created OpenSearch index %s", self.index)
            except exc.RequestError as e:  # created concurrently
                if "resource_already_exists" not in str(e.error):
                    raise
        self._index_ready = True

    # -- indexing ----------------------------------------------------------------------------

    def _source(self, doc: IndexDocument) -> dict[str, Any]:
        source = {
            "doc_id": doc.id,
            "title": doc.title,
            "text": doc.text,
            "bm25_terms": " ".join(doc.terms),
            "sparse": {encode_feature_name(t): float(w) for t, w in doc.sparse.items()},
        }
        if doc.passages:
            source["passages"] = [
                {"sparse": {encode_feature_name(t): float(w) for t, w in p.items()}} for p in doc.passages
            ]
        return source

    def holds_passages(self) -> bool:
        """Whether the index holds documents as passages (recorded in its ``_meta`` when they were added)."""
        if self._passages is None:
            self._passages = bool(self.index_meta().get("sparse_passages"))
        return self._passages

    def add(self, docs: Iterable[IndexDocument], progress: Progress | None = None) -> int:
        """Bulk-index documents (an existing id is replaced), then verify the count.

        Raises:
            ValueError: a document is invalid (checked before anything is sent).
            IndexingError: OpenSearch rejected documents or the count does not add up.
            OpenSearchUnavailable: the node cannot be reached.
        """
        from opensearchpy import helpers

        docs = [validate_document(d) for d in docs]
        ids = [d.id for d in docs]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise ValueError(f"duplicate document ids in one batch: {dupes}")
        self.ensure_index()
        if any(d.passages for d in docs) and not self.holds_passages():
            meta = {**self.index_meta(), "sparse_passages": True}
            self._call(
                "record the passages", lambda: self.client.indices.put_mapping(index=self.index, body={"_meta": meta})
            )
            self._passages = True
        before = self.count()
        total = len(docs)

        def actions() -> Iterator[dict[str, Any]]:
            for d in docs:
                yield {"_op_type": "index", "_index": self.index, "_id": d.id, "_source": self._source(d)}

        created = done = 0
        errors: list[str] = []

        def run_bulk() -> None:
            nonlocal created, done
            for ok, item in helpers.streaming_bulk(
                self.client,
                actions(),
                chunk_size=self.chunk_size,
                max_retries=self.max_retries,
                initial_backoff=1,
                raise_on_error=False,
                raise_on_exception=True,
            ):
                info = item.get("index", item)
                done += 1
                if ok:
                    created += info.get("result") == "created"
                elif len(errors) < 5:
                    err = info.get("error", {})
                    reason = err.get("reason", err) if isinstance(err, dict) else err
                    errors.append(f"{info.get('_id')}: {reason}")
                else:
                    errors.append("")
                if done % self.chunk_size == 0 or done == total:
                    counted(progress, done, total, "documents indexed")

        t0 = time.perf_counter()
        big = total >= 5 * self.chunk_size
        if big:  # no periodic refreshes while a large batch streams in
            self._set_refresh_interval("-1")
        try:
            self._call("index documents", run_bulk)
        finally:
            if big:
                self._set_refresh_interval(None)
        self._call("refresh the index", lambda: self.client.indices.refresh(index=self.index))
        if errors:
            shown = "; ".join(e for e in errors if e)
            raise IndexingError(f"OpenSearch rejected {len(errors)} of {total} documents: {shown}")
        after = self.count()
        if after != before + created:
            raise IndexingError(
                f"index {self.index!r} holds {after} documents after indexing, expected "
                f"{before + created} ({before} before + {created} new); some were dropped"
            )
        logger.info("indexed %d documents into %s in %.1fs", total, self.index, time.perf_counter() - t0)
        return total

    def count(self) -> int:
        """Documents in the index (0 when it does not exist)."""
        from opensearchpy import exceptions as exc

        try:
            res = self._call("count documents", lambda: self.client.count(index=self.index))
        except exc.NotFoundError:
            return 0
        return int(res["count"])

    def recover(self) -> None:
        """After an interrupted ingest: restore the refresh interval a large batch turns off, and refresh, so
        that every document the cluster acknowledged is counted and searchable."""
        from opensearchpy import exceptions as exc

        try:
            self._set_refresh_interval(None)
            self._call("refresh the index", lambda: self.client.indices.refresh(index=self.index))
        except exc.NotFoundError:
            pass

    def _set_refresh_interval(self, interval: str | None) -> None:
        """``"-1"`` turns periodic refreshes off (a large batch); None restores the index default."""
        self._call(
            "tune the index",
            lambda: self.client.indices.put_settings(index=self.index, body={"index": {"refresh_interval": interval}}),
        )

    def existing_ids(self) -> set[str]:
        """The ids of every document in the index (empty when it does not exist), read with a scroll."""
        from opensearchpy import exceptions as exc
        from opensearchpy import helpers

        def scan() -> set[str]:
            hits = helpers.scan(
                self.client, index=self.index, query={"query": {"match_all": {}}, "_source": False}, size=2000
            )
            return {h["_id"] for h in hits}

        try:
            return self._call("list the indexed documents", scan)
        except exc.NotFoundError:
            return set()

    def clear(self) -> None:
        """Delete the index (recreated empty on the next :meth:`add`)."""
        self._call("delete the index", lambda: self.client.indices.delete(index=self.index, ignore_unavailable=True))
        self._index_ready = False
        self._meta_checked = False
        self._passages = None

    delete_index = clear

    # -- searching ---------------------------------------------------------------------------

    def _search_params(self, leg: str) -> dict[str, str]:
        # BM25 statistics are per shard; with several shards, gather them first so scores stay index-wide
        return {"search_type": "dfs_query_then_fetch"} if leg == "bm25" and self.shards > 1 else {}

    def _search(self, leg: str, query: dict[str, Any], k: int, pipeline: str | None = None) -> SearchResult:
        from opensearchpy import exceptions as exc

        body = {
            "size": k,
            "query": query,
            "_source": False,
            "track_scores": True,
            "sort": [{"_score": "desc"}, {"doc_id": "asc"}],
        }
        if pipeline:  # the two-phase processor rescores, which a sort excludes: ties are ordered by id below
            del body["sort"], body["track_scores"]
        t0 = time.perf_counter()
        try:
            res = self._search_call(
                f"run the {leg} query",
                lambda: self.client.search(
                    index=self.index,
                    body=body,
                    params={**self._search_params(leg), **({"search_pipeline": pipeline} if pipeline else {})},
                ),
            )
        except exc.NotFoundError:
            return SearchResult(leg, [], 0.0, self.name)
        took = (time.perf_counter() - t0) * 1000
        rows = [(h["_id"], float(h["_score"])) for h in res["hits"]["hits"] if h.get("_score")]
        rows.sort(key=lambda r: (-r[1], r[0]))
        hits = [Hit(i, s, r) for r, (i, s) in enumerate(rows, start=1)]
        return SearchResult(leg, hits, took, self.name)

    def search_bm25(self, terms: Sequence[str], k: int = 10) -> SearchResult:
        """BM25 on ``bm25_terms`` (a ``match`` query on the space-joined terms)."""
        validate_k(k)
        terms = [t for t in terms if t and not any(ch.isspace() for ch in t)]
        if not terms:
            return SearchResult("bm25", [], 0.0, self.name)
        if not self._meta_checked:
            self.check_analyzer()
        return self._search("bm25", bm25_query(terms), k)

    def sparse_query(self, qvec: Mapping[str, float]) -> dict[str, Any]:
        """The query DSL for a sparse vector (``neural_sparse`` or ``rank_feature`` clauses)."""
        qvec = validate_sparse_vector(qvec, what="query vector")
        check_sparse_clauses(len(qvec))  # before asking the cluster for its plugins
        encoded = {encode_feature_name(t): w for t, w in qvec.items()}
        return sparse_query_dsl(encoded, neural=self.has_neural_plugin(), passages=self.holds_passages())

    def search_sparse(
        self, qvec: Mapping[str, float], k: int = 10, *, two_phase: TwoPhase | None = None
    ) -> SearchResult:
        """Dot product of ``qvec`` with the stored ``rank_features`` (in two phases with ``two_phase``, which
        needs the neural-search plugin)."""
        validate_k(k)
        if not qvec:
            return SearchResult("sparse", [], 0.0, self.name)
        pipeline = None
        if two_phase is not None:
            self._require_plugin("two-phase sparse search")
            two_phase.check_size(k)
            pipeline, body = sparse_pipeline(two_phase)
            self._ensure_pipeline(pipeline, body)
        return self._search("sparse", self.sparse_query(qvec), k, pipeline)

    def _require_plugin(self, what: str) -> None:
        if not self.has_neural_plugin():
            raise ValueError(f"{what} needs the neural-search plugin, which this OpenSearch cluster does not have")

    def supports_server_hybrid(self) -> bool:
        """Whether the cluster can fuse a hybrid search itself (the neural-search plugin's ``hybrid`` query)."""
        return self.has_neural_plugin()

    def _ensure_pipeline(self, name: str, body: dict[str, Any]) -> None:
        if name not in self._pipelines:
            self._call(
                "create the hybrid search pipeline",
                lambda: self.client.transport.perform_request("PUT", f"/_search/pipeline/{name}", body=body),
            )
            self._pipelines.add(name)

    def search_hybrid(
        self,
        terms: Sequence[str],
        qvec: Mapping[str, float],
        k: int = 10,
        *,
        fusion: str = "minmax",
        weights: Sequence[float] | None = (0.5, 0.5),
        candidates: int | None = None,
        rank_constant: int = 60,
        two_phase: TwoPhase | None = None,
    ) -> tuple[SearchResult, str]:
        """BM25 and sparse legs fused by the cluster: a ``hybrid`` query through a search pipeline.

        Each leg contributes its top ``candidates`` hits (default ``k``), as the legs of client-side fusion
        do; ``weights`` are (BM25, sparse) for ``minmax``; ``rrf`` is unweighted. Ties are broken by id as
        in :func:`sparse_demo.index.fusion.fuse`. ``two_phase`` runs the sparse leg in two phases. With several
        shards the BM25 leg uses each shard's statistics (the client's BM25 leg gathers them first), so the
        two fusions may differ slightly there.

        Returns:
            ``(result, pipeline name)``; the result's leg is ``"hybrid"``.

        Raises:
            ValueError: the cluster has no neural-search plugin, or bad options.
        """
        validate_k(k)
        size = max(k, int(candidates or k))
        self._require_plugin("server-side hybrid")
        if two_phase is not None:
            two_phase.check_size(size)
        name, pipeline = hybrid_pipeline(fusion, weights if fusion == "minmax" else None, rank_constant, two_phase)
        terms = [t for t in terms if t and not any(ch.isspace() for ch in t)]
        if terms and not self._meta_checked:
            self.check_analyzer()
        legs = [bm25_query(terms) if terms else None, self.sparse_query(qvec) if qvec else None]
        if legs == [None, None]:
            return SearchResult("hybrid", [], 0.0, self.name), name
        self._ensure_pipeline(name, pipeline)
        body = {"size": size, "query": hybrid_query(legs), "_source": False}
        # no dfs_query_then_fetch here: under it 2.19.1 skips the pipeline's normalization and returns raw
        # scores, so with several shards the BM25 leg of a server-side hybrid uses per-shard statistics
        params = {"search_pipeline": name}
        from opensearchpy import exceptions as exc

        t0 = time.perf_counter()
        try:
            res = self._search_call(
                "run the hybrid query", lambda: self.client.search(index=self.index, body=body, params=params)
            )
        except exc.NotFoundError:
            return SearchResult("hybrid", [], 0.0, self.name), name
        took = (time.perf_counter() - t0) * 1000
        best: dict[str, float] = {}
        for h in res["hits"]["hits"]:
            best[h["_id"]] = max(best.get(h["_id"], float("-inf")), float(h["_score"]))
        rows = sorted(best.items(), key=lambda r: (-r[1], r[0]))[:k]
        return SearchResult("hybrid", [Hit(i, s, r) for r, (i, s) in enumerate(rows, start=1)], took, self.name), name

    def engine_explain_sparse(self, doc_id: str, qvec: Mapping[str, float]) -> dict[str, float]:
        """The engine's own per-token contributions to ``doc_id``'s sparse score (``_explain``), token -> value.

        Read from the Lucene explanation's ``Linear function on the <field> field for the <feature>
        feature, computed as w * S`` leaves (feature names decoded back to tokens); for a document read as
        passages, the passage the engine scored the document by. Empty when the document does not match.
        """
        qvec = validate_sparse_vector(qvec, what="query vector")
        res = self._call(
            "explain a score",
            lambda: self.client.explain(index=self.index, id=doc_id, body={"query": self.sparse_query(qvec)}),
        )
        out: dict[str, float] = {}

        def walk(node: Mapping[str, Any]) -> None:
            m = _LINEAR_RE.match(str(node.get("description", "")))
            if m:
                token = decode_feature_name(m.group("feature"))
                out[token] = max(out.get(token, 0.0), float(node.get("value", 0.0)))
                return
            for child in node.get("details") or ():
                walk(child)

        walk(res.get("explanation") or {})
        return out

    def get(self, doc_id: str) -> IndexDocument | None:
        """Fetch a stored document (terms and vector decoded), or None."""
        from opensearchpy import exceptions as exc

        try:
            res = self._call("fetch a document", lambda: self.client.get(index=self.index, id=doc_id))
        except exc.NotFoundError:
            return None
        src = res["_source"]
        return IndexDocument(
            id=res["_id"],
            text=src.get("text", ""),
            terms=src.get("bm25_terms", "").split(),
            sparse={decode_feature_name(k): float(v) for k, v in src.get("sparse", {}).items()},
            title=src.get("title", ""),
            passages=tuple(
                {decode_feature_name(k): float(v) for k, v in (p.get("sparse") or {}).items()}
                for p in src.get("passages") or ()
            ),
        )

    def explain_sparse(self, doc_id: str, qvec: Mapping[str, float]) -> SparseExplanation:
        """Per-token contributions, with stored weights rounded to 9 bits as Lucene scores them.

        Raises:
            KeyError: the document is not indexed.
        """
        qvec = validate_sparse_vector(qvec, what="query vector")
        doc = self.get(doc_id)
        if doc is None:
            raise KeyError(f"document {doc_id!r} is not in index {self.index!r}")
        stored = doc.sparse
        if doc.passages:  # the best passage makes the document's score (MaxP)

            def dot(vec: Mapping[str, float]) -> float:
                return sum(qw * float(lucene_feature_value(vec[t])) for t, qw in qvec.items() if t in vec)

            stored = max(doc.passages, key=dot)
        contribs = []
        for t, qw in qvec.items():
            if t in stored:
                dw = float(lucene_feature_value(stored[t]))
                contribs.append(TokenContribution(t, qw, dw, qw * dw))
        contribs.sort(key=lambda c: (-c.contribution, c.token))
        return SparseExplanation(doc_id, float(sum(c.contribution for c in contribs)), contribs)
