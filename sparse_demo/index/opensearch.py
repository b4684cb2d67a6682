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
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from sparse_demo.index.base import (
    Hit,
    IndexDocument,
    ProgressCallback,
    SearchResult,
    SparseExplanation,
    TokenContribution,
    validate_document,
    validate_k,
    validate_sparse_vector,
)
from sparse_demo.korean import DEFAULT_ANALYZER, BM25Analyzer, get_analyzer

logger = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:9200"
DEFAULT_INDEX = "sparse-demo"
#: Lucene's default ``indices.query.bool.max_clause_count`` in OpenSearch 2.x.
MAX_QUERY_CLAUSES = 1024
_INDEX_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]{0,254}$")
# Characters a feature name keeps as is; everything else in _UNSAFE or non-printable is %-encoded.
_UNSAFE = set('.%*?,"\\/#&+=<>|{}[]()^~:!')
#: What ``bm25_terms`` holds, recorded in the mapping's ``_meta``.
_TERMS_FORMAT = "kiwi form/tag morphemes, space-joined"
_START_HINT = "Start a local node with `scripts/opensearch.sh start` or set OPENSEARCH_URL."


class _DropTraceback(logging.Filter):
    """opensearch-py logs every failed connection with a full traceback; keep the one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


_DROP_TRACEBACK = _DropTraceback()


class OpenSearchUnavailable(RuntimeError):
    """OpenSearch cannot be used right now; ``str(exc)`` is a readable message."""


class IndexingError(RuntimeError):
    """Documents were rejected or went missing during bulk indexing."""


class AnalyzerMismatchError(ValueError):
    """The index holds BM25 terms of another analyzer than the backend's."""


# --- feature names -----------------------------------------------------------------------


def encode_feature_name(token: str) -> str:
    """Make a token safe as a ``rank_features`` key (reversible).

    ``.`` would split the field path and ``%`` is the escape character; both, whitespace,
    control characters and query-syntax characters are percent-encoded (UTF-8 bytes).

    Example:
        >>> encode_feature_name("▁3.5%")
        '▁3%2E5%25'
        >>> decode_feature_name(encode_feature_name("a.b c"))
        'a.b c'
    """
    if not isinstance(token, str) or token == "":
        raise ValueError(f"token names must be non-empty strings, got {token!r}")
    out = []
    for ch in token:
        if ch in _UNSAFE or not ch.isprintable() or ch.isspace():
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


def decode_feature_name(name: str) -> str:
    """Invert :func:`encode_feature_name`."""
    return unquote(name)


# --- connection --------------------------------------------------------------------------


def _env_bool(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"OPENSEARCH_VERIFY_CERTS must be one of true/false/1/0/yes/no, got {value!r}")


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to connect. ``password`` never appears in ``repr``."""

    url: str = DEFAULT_URL
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    verify_certs: bool = True
    timeout: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConnectionSettings:
        """Read ``OPENSEARCH_URL``, ``OPENSEARCH_USER``, ``OPENSEARCH_PASSWORD``, ``OPENSEARCH_VERIFY_CERTS``.

        Credentials embedded in the URL (``https://user:pw@host``) are moved out of it.
        """
        env = os.environ if environ is None else environ
        url = (env.get("OPENSEARCH_URL") or DEFAULT_URL).strip()
        user = env.get("OPENSEARCH_USER") or None
        password = env.get("OPENSEARCH_PASSWORD") or None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("OPENSEARCH_URL must look like http(s)://host:port")
        if parts.username:
            user = user or unquote(parts.username)
            password = password or (unquote(parts.password) if parts.password else None)
            netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
            url = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        verify = _env_bool(env.get("OPENSEARCH_VERIFY_CERTS"), True)
        return cls(url=url.rstrip("/"), user=user, password=password, verify_certs=verify)

    @property
    def display_url(self) -> str:
        """The URL without credentials, safe to show."""
        parts = urlsplit(self.url)
        netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# --- backend -----------------------------------------------------------------------------


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
    ):
        if not isinstance(index, str) or not _INDEX_NAME_RE.match(index) or index in (".", ".."):
            raise ValueError(
                f"invalid index name {index!r}: use lowercase letters, digits, '.', '_', '-', '+' "
                "(not starting with '_', '-' or '+')"
            )
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.analyzer = get_analyzer(analyzer)
        self.index = index
        self.settings = settings or ConnectionSettings.from_env()
        self._client = client
        self._use_neural = use_neural
        self.chunk_size = chunk_size
        self.max_retries = max_retries
        self._index_ready = False
        self._meta_checked = False

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                from opensearchpy import OpenSearch
            except ImportError as exc:  # pragma: no cover - dependency is in requirements
                raise ImportError(
                    "opensearch-py is required for the OpenSearch backend: pip install opensearch-py"
                ) from exc
            s = self.settings
            client_logger = logging.getLogger("opensearch")
            if _DROP_TRACEBACK not in client_logger.filters:
                client_logger.addFilter(_DROP_TRACEBACK)
            self._client = OpenSearch(
                hosts=[s.url],
                http_auth=(s.user, s.password or "") if s.user else None,
                use_ssl=s.url.startswith("https"),
                verify_certs=s.verify_certs,
                ssl_show_warn=s.verify_certs,
                timeout=s.timeout,
                max_retries=1,
                retry_on_timeout=False,
            )
        return self._client

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run a client call, turning connection/auth failures into OpenSearchUnavailable."""
        from opensearchpy import exceptions as exc

        url = self.settings.display_url
        try:
            return fn()
        except exc.AuthenticationException:
            raise OpenSearchUnavailable(
                f"OpenSearch at {url} refused the credentials while trying to {what} "
                "(check OPENSEARCH_USER / OPENSEARCH_PASSWORD)."
            ) from None
        except exc.AuthorizationException:
            raise OpenSearchUnavailable(
                f"OpenSearch at {url}: the configured user may not {what} on index {self.index!r}."
            ) from None
        except exc.ConnectionTimeout:
            raise OpenSearchUnavailable(
                f"OpenSearch at {url} did not answer in time while trying to {what}. {_START_HINT}"
            ) from None
        except exc.SSLError:
            raise OpenSearchUnavailable(
                f"TLS handshake with OpenSearch at {url} failed while trying to {what} "
                "(for a self-signed certificate set OPENSEARCH_VERIFY_CERTS=false)."
            ) from None
        except exc.ConnectionError as e:
            logger.debug("OpenSearch connection error: %s", type(e).__name__)
            raise OpenSearchUnavailable(
                f"OpenSearch is not reachable at {url} (could not {what}). {_START_HINT}"
            ) from None

    def ping(self) -> dict[str, Any]:
        """Cluster info (name, version); raises OpenSearchUnavailable when down."""
        return self._call("connect", lambda: self.client.info())

    def has_neural_plugin(self) -> bool:
        """Whether the cluster has the neural-search plugin (``neural_sparse`` query)."""
        if self._use_neural is None:
            plugins = self._call("list plugins", lambda: self.client.cat.plugins(format="json"))
            names = {str(p.get("component", "")) for p in plugins or []}
            self._use_neural = any("neural-search" in n for n in names)
            logger.info("OpenSearch neural-search plugin %s", "found" if self._use_neural else "not installed")
        return bool(self._use_neural)

    def index_body(self) -> dict[str, Any]:
        """Settings and mappings of the index."""
        return {
            "settings": {
                "index": {"number_of_shards": 1, "number_of_replicas": 0},
                "analysis": {
                    "tokenizer": {"morpheme_ws": {"type": "whitespace", "max_token_length": 4096}},
                    "analyzer": {"morpheme_whitespace": {"type": "custom", "tokenizer": "morpheme_ws"}},
                },
                "similarity": {"lucene_bm25": {"type": "BM25", "k1": 1.2, "b": 0.75}},
            },
            "mappings": {
                "_meta": {"bm25_analyzer": self.analyzer.spec, "bm25_terms": _TERMS_FORMAT},
                "dynamic": "strict",
                "properties": {
                    "doc_id": {"type": "keyword"},
                    "title": {"type": "text", "index": False},
                    "text": {"type": "text", "index": False},
                    "bm25_terms": {
                        "type": "text",
                        "analyzer": "morpheme_whitespace",
                        "similarity": "lucene_bm25",
                    },
                    "sparse": {"type": "rank_features"},
                },
            },
        }

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
        return {
            "doc_id": doc.id,
            "title": doc.title,
            "text": doc.text,
            "bm25_terms": " ".join(doc.terms),
            "sparse": {encode_feature_name(t): float(w) for t, w in doc.sparse.items()},
        }

    def add(self, docs: Iterable[IndexDocument], progress: ProgressCallback | None = None) -> int:
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
                if progress is not None and (done % self.chunk_size == 0 or done == total):
                    progress(done, total)

        t0 = time.perf_counter()
        big = total >= 5 * self.chunk_size
        if big:  # no periodic refreshes while a large batch streams in
            self._call(
                "tune the index",
                lambda: self.client.indices.put_settings(index=self.index, body={"index": {"refresh_interval": "-1"}}),
            )
        try:
            self._call("index documents", run_bulk)
        finally:
            if big:
                self._call(
                    "tune the index",
                    lambda: self.client.indices.put_settings(
                        index=self.index, body={"index": {"refresh_interval": None}}
                    ),
                )
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

    def clear(self) -> None:
        """Delete the index (recreated empty on the next :meth:`add`)."""
        self._call("delete the index", lambda: self.client.indices.delete(index=self.index, ignore_unavailable=True))
        self._index_ready = False
        self._meta_checked = False

    delete_index = clear

    # -- searching ---------------------------------------------------------------------------

    def _search(self, leg: str, query: dict[str, Any], k: int) -> SearchResult:
        from opensearchpy import exceptions as exc

        body = {
            "size": k,
            "query": query,
            "_source": False,
            "track_scores": True,
            "sort": [{"_score": "desc"}, {"doc_id": "asc"}],
        }
        t0 = time.perf_counter()
        try:
            res = self._call(f"run the {leg} query", lambda: self.client.search(index=self.index, body=body))
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
        if len(set(terms)) > MAX_QUERY_CLAUSES:
            raise ValueError(
                f"query has {len(set(terms))} distinct terms; OpenSearch allows at most {MAX_QUERY_CLAUSES}"
            )
        return self._search("bm25", {"match": {"bm25_terms": {"query": " ".join(terms)}}}, k)

    def sparse_query(self, qvec: Mapping[str, float]) -> dict[str, Any]:
        """The query DSL for a sparse vector (``neural_sparse`` or ``rank_feature`` clauses)."""
        qvec = validate_sparse_vector(qvec, what="query vector")
        if len(qvec) > MAX_QUERY_CLAUSES:
            raise ValueError(
                f"query vector has {len(qvec)} tokens; OpenSearch allows at most {MAX_QUERY_CLAUSES} "
                "clauses (indices.query.bool.max_clause_count): keep the top tokens only"
            )
        encoded = {encode_feature_name(t): w for t, w in qvec.items()}
        if self.has_neural_plugin():
            return {"neural_sparse": {"sparse": {"query_tokens": encoded}}}
        return {
            "bool": {
                "should": [
                    {"rank_feature": {"field": f"sparse.{name}", "linear": {}, "boost": w}}
                    for name, w in encoded.items()
                ]
            }
        }

    def search_sparse(self, qvec: Mapping[str, float], k: int = 10) -> SearchResult:
        """Dot product of ``qvec`` with the stored ``rank_features``."""
        validate_k(k)
        if not qvec:
            return SearchResult("sparse", [], 0.0, self.name)
        return self._search("sparse", self.sparse_query(qvec), k)

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
        )

    def explain_sparse(self, doc_id: str, qvec: Mapping[str, float]) -> SparseExplanation:
        """Per-token contributions, with stored weights rounded to 9 bits as Lucene scores them.

        Raises:
            KeyError: the document is not indexed.
        """
        from sparse_demo.index.memory import lucene_feature_value

        qvec = validate_sparse_vector(qvec, what="query vector")
        doc = self.get(doc_id)
        if doc is None:
            raise KeyError(f"document {doc_id!r} is not in index {self.index!r}")
        contribs = []
        for t, qw in qvec.items():
            if t in doc.sparse:
                dw = float(lucene_feature_value(doc.sparse[t]))
                contribs.append(TokenContribution(t, qw, dw, qw * dw))
        contribs.sort(key=lambda c: (-c.contribution, c.token))
        return SparseExplanation(doc_id, float(sum(c.contribution for c in contribs)), contribs)
