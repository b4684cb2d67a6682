"""Vectors to an index: index keys, build statistics and :func:`build_index` for either backend.

An index is identified by an :class:`IndexKey`: the corpus content, the model's checkpoint
fingerprint (``SpladeEncoder.fingerprint``: folder files or Hub commit, plus the settings that
change vectors), the BM25 analyzer spec, the document pruning and the backend. A model's display
name is kept for messages only, so a checkpoint replaced under the same name is never served
from an index built with the old one.

OpenSearch indexes outlive the process. Each one records its key in its mapping's ``_meta``
(under ``META_KEY``; merged with whatever the backend itself keeps there, such as its analyzer),
and :func:`build_index` reuses an existing index only when that record, the BM25 analyzer and the
document count agree; otherwise it replaces the index and says so in the notes.

Example:
    >>> from sparse_demo.corpus import Corpus, Document
    >>> key = index_key(Corpus("toy", [Document("d1", "혈당")]), None, "memory")
    >>> (key.backend, key.fingerprint, key.analyzer)
    ('memory', '', 'default')
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sparse_demo.corpus import Corpus
from sparse_demo.encoder import Encoder
from sparse_demo.encoder.windows import WindowCounts, WindowSettings
from sparse_demo.index import IndexDocument, MemoryBackend, SearchBackend
from sparse_demo.progress import Progress, scaled
from sparse_demo.search.corpus_files import corpus_id
from sparse_demo.search.encode import (
    DocumentTerms,
    DocumentVectors,
    EncodedCorpus,
    TokenIds,
    analyse_terms,
    analyzer_spec,
    analyzer_terms,
    assemble,
    encode_query,
    encode_vectors,
)
from sparse_demo.search.options import (
    BACKENDS,
    DEFAULT_ANALYZER,
    DEFAULT_DOC_TOP_K,
    DEFAULT_DOC_WINDOWS,
    DEFAULT_QUERY_TOP_K,
    BackendName,
    choice,
)

logger = logging.getLogger(__name__)

#: The key under which an OpenSearch index's mapping ``_meta`` records how it was built.
META_KEY = "sparse_demo"


@dataclass(frozen=True)
class IndexKey:
    """What identifies a built index: corpus content, model, backend, BM25 analyzer and pruning.

    Attributes:
        corpus_id: ``<name>-<content hash>`` of the corpus.
        model: The model's display name ("" for a BM25-only index).
        backend: ``"memory"`` or ``"opensearch"``.
        fingerprint: The model's checkpoint + settings fingerprint ("" for BM25 only); two
            checkpoints under one name get different keys.
        analyzer: The BM25 analyzer spec.
        doc_top_k: Tokens kept per document vector (None: all).
        doc_windows: How documents longer than the model reads were read (``WindowSettings.key``:
            ``max/sauto``, ``first``; "" for BM25 only).
    """

    corpus_id: str
    model: str
    backend: str
    fingerprint: str = ""
    analyzer: str = DEFAULT_ANALYZER
    doc_top_k: int | None = DEFAULT_DOC_TOP_K
    doc_windows: str = DEFAULT_DOC_WINDOWS.key

    @property
    def vectors_id(self) -> str:
        """What the encoded documents (terms and vectors) depend on: all of the key but the backend."""
        return f"{self.corpus_id}\x1f{self.fingerprint}\x1f{self.analyzer}\x1f{self.doc_top_k}\x1f{self.doc_windows}"

    @property
    def sparse_id(self) -> str:
        """What the document vectors depend on: corpus content, model fingerprint, pruning and windows (not the
        analyzer)."""
        return f"{self.corpus_id}\x1f{self.fingerprint}\x1f{self.doc_top_k}\x1f{self.doc_windows}"

    @property
    def terms_id(self) -> str:
        """What the documents' BM25 terms depend on: corpus content and analyzer (not the model)."""
        return f"{self.corpus_id}\x1f{self.analyzer}"

    def sparse_key(self) -> IndexKey:
        """The key of this index's document vectors in a session's part cache.

        This key with the backend, the model's display name and the analyzer blanked, so every
        other field (any added later, such as an owner) still tells entries apart.
        """
        return replace(self, model="", backend="", analyzer="")

    def terms_key(self) -> IndexKey:
        """The key of this index's BM25 terms in a session's part cache (model, pruning and backend blanked)."""
        return replace(self, model="", backend="", fingerprint="", doc_top_k=None, doc_windows="")

    def meta(self) -> dict[str, Any]:
        """The ``_meta`` an OpenSearch index built for this key records."""
        return {
            META_KEY: {
                "corpus_id": self.corpus_id,
                "model": self.model,
                "model_fingerprint": self.fingerprint,
                "analyzer": self.analyzer,
                "doc_top_k": self.doc_top_k,
                "doc_windows": self.doc_windows,
            }
        }


@dataclass(frozen=True)
class IndexStats:
    """What building an index did."""

    documents: int
    avg_tokens: float
    pruned_docs: int
    encode_seconds: float
    index_seconds: float
    index_name: str = ""
    reused: bool = False
    #: How many documents were longer than the model reads, and how they were read (None: no model ran).
    windows: WindowCounts | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "document_windows": self.windows.to_json() if self.windows is not None else None,
            "documents": self.documents,
            "avg_sparse_tokens": round(self.avg_tokens, 2),
            "pruned_documents": self.pruned_docs,
            "encode_seconds": round(self.encode_seconds, 3),
            "index_seconds": round(self.index_seconds, 3),
            "index_name": self.index_name,
            "reused_existing": self.reused,
        }


@dataclass
class SearchIndex:
    """A corpus loaded into one backend with the encoder that built it.

    ``documents`` keeps the encoded documents (None when an existing OpenSearch index was
    reused), so a fallback to memory needs no re-encoding; ``input_ids`` their input token ids
    (see :class:`~sparse_demo.search.encode.TokenIds`; None where unknown), for the corpus report.
    """

    key: IndexKey
    corpus: Corpus
    backend: SearchBackend
    encoder: Encoder | None
    documents: list[IndexDocument] | None
    stats: IndexStats
    doc_top_k: int | None = DEFAULT_DOC_TOP_K
    query_top_k: int | None = DEFAULT_QUERY_TOP_K
    notes: list[str] = field(default_factory=list)
    input_ids: TokenIds | None = None
    doc_windows: WindowSettings = DEFAULT_DOC_WINDOWS
    _queries: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def model_name(self) -> str:
        return self.key.model

    @property
    def analyzer(self) -> str:
        """The BM25 analyzer spec of the indexed terms (queries are analysed the same way)."""
        return self.key.analyzer

    def encoded(self) -> EncodedCorpus | None:
        """The encoded documents (and their input ids) to load into another backend, or None."""
        if not self.documents:
            return None
        return EncodedCorpus(
            self.documents, self.stats.pruned_docs, 0.0, self.key.vectors_id, self.input_ids, self.stats.windows
        )

    def document_vectors(self) -> DocumentVectors | None:
        """The sparse half of the encoded documents (shared, not copied), or None when not kept."""
        if not self.documents:
            return None
        return DocumentVectors(
            [dict(d.sparse) if not isinstance(d.sparse, dict) else d.sparse for d in self.documents],
            self.stats.pruned_docs,
            0.0,
            self.input_ids,
            self.key.sparse_id,
            self.stats.windows,
            [tuple(d.passages) for d in self.documents] if any(d.passages for d in self.documents) else None,
        )

    def document_terms(self) -> DocumentTerms | None:
        """The BM25 half of the encoded documents (shared, not copied), or None when not kept."""
        if not self.documents:
            return None
        terms = [d.terms if isinstance(d.terms, list) else list(d.terms) for d in self.documents]
        return DocumentTerms(terms, 0.0, self.key.terms_id)

    def query_terms(self, query: str) -> list[str]:
        """The query's BM25 terms with this index's analyzer."""
        return analyzer_terms(self.key.analyzer)(query)

    def query_vector(self, query: str) -> tuple[dict[str, float], bool]:
        """The query's pruned search vector (cached per index); ``(vector, pruned)``."""
        if self.encoder is None:
            raise ValueError(
                "this index was built without a model (BM25 only); pick a model and build the index "
                "to search with the sparse or hybrid method"
            )
        with self._lock:
            hit = self._queries.get(query)
            if hit is not None:
                self._queries.move_to_end(query)
                return hit
        value = encode_query(self.encoder, query, self.query_top_k)
        with self._lock:
            self._queries[query] = value
            while len(self._queries) > 256:
                self._queries.popitem(last=False)
        return value


def model_key(encoder: Encoder | None) -> str:
    """The model's display name in an index key (empty for BM25 only)."""
    return "" if encoder is None else str(encoder.name or type(encoder).__name__)


def model_fingerprint(encoder: Encoder | None) -> str:
    """The model's checkpoint + settings fingerprint ("" for BM25 only)."""
    return "" if encoder is None else str(encoder.fingerprint)


def index_key(
    corpus: Corpus,
    encoder: Encoder | None,
    backend: str,
    *,
    analyzer: str = DEFAULT_ANALYZER,
    doc_top_k: int | None = DEFAULT_DOC_TOP_K,
    doc_windows: WindowSettings = DEFAULT_DOC_WINDOWS,
) -> IndexKey:
    """The :class:`IndexKey` of ``corpus`` encoded by ``encoder`` in ``backend``.

    Raises:
        ValueError: an unknown backend or analyzer.
    """
    choice(backend, BACKENDS, "backend")
    top_k = doc_top_k if encoder is not None else None
    windows = doc_windows.key if encoder is not None else ""
    return IndexKey(
        corpus_id(corpus),
        model_key(encoder),
        backend,
        model_fingerprint(encoder),
        analyzer_spec(analyzer),
        top_k,
        windows,
    )


def default_index_name(key: IndexKey, doc_top_k: int | None = None) -> str:
    """A valid OpenSearch index name derived from the key (content hash + model/analyzer hash)."""
    fp = key.corpus_id.rsplit("-", 1)[-1][:12]
    top_k = key.doc_top_k if doc_top_k is None else doc_top_k
    if not key.fingerprint:
        tail = "" if key.analyzer == DEFAULT_ANALYZER else "-" + hashlib.sha256(key.analyzer.encode()).hexdigest()[:6]
        return f"sparse-demo-{fp}-bm25{tail}"
    mh = hashlib.sha256(f"{key.fingerprint}\x1f{top_k}\x1f{key.analyzer}\x1f{key.doc_windows}".encode()).hexdigest()[:8]
    return f"sparse-demo-{fp}-{mh}"


def read_index_meta(backend: Any) -> dict[str, Any]:
    """The ``_meta`` of an OpenSearch index's mapping ({} when it does not exist or has none)."""
    if hasattr(backend, "index_meta"):  # the backend's own reader, where it has one
        meta = backend.index_meta()
        if meta is None or isinstance(meta, Mapping):
            return dict(meta or {})
    from opensearchpy import exceptions as exc

    try:
        res = backend._call("read the index mapping", lambda: backend.client.indices.get_mapping(index=backend.index))
    except exc.NotFoundError:
        return {}
    mapping = (res or {}).get(backend.index, {}).get("mappings", {})
    return dict(mapping.get("_meta") or {})


def write_index_meta(backend: Any, meta: dict[str, Any]) -> None:
    """Merge ``meta`` into the OpenSearch index mapping's ``_meta`` (other keys are kept)."""
    merged = {**read_index_meta(backend), **meta}
    backend._call(
        "record the index metadata",
        lambda: backend.client.indices.put_mapping(index=backend.index, body={"_meta": merged}),
    )


def _stale_reason(backend: Any, key: IndexKey, corpus: Corpus, *, ignore_count: bool = False) -> str | None:
    """Why an existing OpenSearch index does not hold this key's vectors (None: it does).

    Compares the ``_meta`` recorded at build time (corpus content id, model fingerprint, BM25
    analyzer, pruning) and the document count.
    """
    count = backend.count()
    if count == 0:
        return "it is empty or missing"
    meta = read_index_meta(backend)
    ours = meta.get(META_KEY)
    if not isinstance(ours, dict):
        return "it records no build metadata (built by an older version)"
    want = key.meta()[META_KEY]
    for field_name, label in (
        ("corpus_id", "corpus content"),
        ("model_fingerprint", "model checkpoint"),
        ("analyzer", "BM25 analyzer"),
        ("doc_top_k", "document pruning"),
        ("doc_windows", "long-document reading"),
    ):
        if ours.get(field_name) != want[field_name]:
            return f"its {label} differs ({ours.get(field_name)!r} there, {want[field_name]!r} here)"
    stored_analyzer = meta.get("bm25_analyzer")  # what the backend itself records at creation
    if isinstance(stored_analyzer, str) and stored_analyzer != key.analyzer:
        return f"its BM25 analyzer differs ({stored_analyzer!r} there, {key.analyzer!r} here)"
    if count != len(corpus) and not ignore_count:
        return f"it holds {count} documents, the corpus {len(corpus)}"
    return None


def _resumable_ids(backend: Any, key: IndexKey, corpus: Corpus) -> set[str]:
    """The ids an interrupted ingest of this key left in ``backend``'s index.

    Raises:
        ValueError: the index was made for something else, or holds documents the corpus does not have.
    """
    why = _stale_reason(backend, key, corpus, ignore_count=True)
    if why is not None:
        raise ValueError(f"cannot resume into OpenSearch index {backend.index!r}: {why}; build it again without resume")
    have = backend.existing_ids()
    extra = sorted(have - {d.id for d in corpus.documents})
    if extra:
        raise ValueError(
            f"cannot resume into OpenSearch index {backend.index!r}: it holds {len(extra)} documents that are not "
            f"in this corpus (e.g. {', '.join(extra[:3])}); build it again without resume"
        )
    return have


def _check_complete(backend: Any, corpus: Corpus) -> None:
    """Raise IndexingError unless the index holds exactly the corpus's documents (the message names missing ids)."""
    from sparse_demo.index.opensearch import IndexingError

    count = backend.count()
    if count == len(corpus):
        return
    have = backend.existing_ids()
    want = [d.id for d in corpus.documents]
    missing = [i for i in want if i not in have]
    extra = sorted(have - set(want))
    raise IndexingError(
        f"OpenSearch index {backend.index!r} holds {count:,} documents, the corpus {len(corpus):,}"
        + (f"; missing: {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}" if missing else "")
        + (f"; not in the corpus: {', '.join(extra[:10])}" if extra else "")
        + " (run the ingest again with resume to add the missing ones)"
    )


def _make_backend(kind: str, name: str, analyzer: str, settings: Any | None, **layout: Any) -> Any:
    """A backend told the analyzer spec where its constructor takes one (and, for OpenSearch, ``layout``:
    ``shards``, ``replicas``, ``chunk_size``)."""
    if kind == "opensearch":
        from sparse_demo.index.opensearch import OpenSearchBackend

        cls: Any = OpenSearchBackend
        args: tuple[Any, ...] = (name,)
        kwargs: dict[str, Any] = {"settings": settings, **{k: v for k, v in layout.items() if v is not None}}
    else:
        cls, args, kwargs = MemoryBackend, (), {}
    if "analyzer" in inspect.signature(cls).parameters:
        kwargs["analyzer"] = analyzer
    return cls(*args, **kwargs)


def build_index(
    corpus: Corpus,
    encoder: Encoder | None,
    backend: BackendName = "memory",
    *,
    progress: Progress | None = None,
    index_name: str | None = None,
    batch_size: int = 32,
    doc_top_k: int | None = DEFAULT_DOC_TOP_K,
    query_top_k: int | None = DEFAULT_QUERY_TOP_K,
    encoded: EncodedCorpus | None = None,
    reuse_existing: bool = True,
    opensearch_settings: Any | None = None,
    analyzer: str = DEFAULT_ANALYZER,
    vectors: DocumentVectors | None = None,
    terms: DocumentTerms | None = None,
    doc_windows: WindowSettings = DEFAULT_DOC_WINDOWS,
    disk_cache: bool = False,
    resume: bool = False,
    shards: int | None = None,
    replicas: int | None = None,
    bulk_size: int | None = None,
) -> SearchIndex:
    """Encode ``corpus`` and load it into a backend.

    The two halves of the encoded documents are made apart: the document vectors (the model's
    work; they depend on the corpus, the model fingerprint and the pruning) and the BM25 terms
    (Kiwi's work; they depend on the corpus and the analyzer). Either can be passed in ready, so
    a change of analyzer never runs the model and a change of model never runs Kiwi.

    Args:
        corpus: The documents (and optional queries/qrels for gold marks).
        encoder: An :class:`~sparse_demo.encoder.Encoder`;
            None builds a BM25-only index.
        backend: ``"memory"`` or ``"opensearch"`` (``OPENSEARCH_URL`` etc.).
        progress: ``progress(fraction, description)``.
        index_name: OpenSearch index name; default derived from corpus, model fingerprint,
            analyzer and pruning.
        batch_size: Texts per encoder call.
        doc_top_k: Tokens kept per document vector (None: all).
        query_top_k: Tokens kept per query vector (None: all; OpenSearch allows 1024).
        encoded: Already encoded documents (skips encoding); they must come from the same
            corpus, model fingerprint, analyzer and pruning.
        vectors: Ready document vectors (skips the model); they must come from the same corpus,
            model fingerprint and pruning (``IndexKey.sparse_id``). Ignored with ``encoded``.
        terms: Ready BM25 terms (skips Kiwi); they must come from the same corpus and analyzer
            (``IndexKey.terms_id``). Ignored with ``encoded``.
        reuse_existing: OpenSearch only: when the index already holds this corpus encoded by
            this checkpoint (the fingerprint recorded in its ``_meta``) with this analyzer, use it
            without encoding again. An existing index holding anything else is replaced.
        opensearch_settings: ``ConnectionSettings`` (default: from the environment).
        analyzer: The BM25 analyzer spec (``"default"``, ``"all"`` or a stop-tag list).
        doc_windows: How a document longer than the model's max length is read (default: all of it, the max
            over its windows; ``first`` truncates); the notes say how many documents that concerned.
        disk_cache: Read and keep a shared corpus's document vectors on disk
            (:func:`~sparse_demo.search.encode.encode_vectors`); callers leave it off for a visitor's model.
        resume: OpenSearch only: continue an interrupted ingest into an index made for this key (same
            corpus, model, analyzer, pruning, as its ``_meta`` records from the start of an ingest): only the
            documents it lacks are sent. Without it such an index is replaced.
        shards, replicas: OpenSearch only: the layout of an index created here (default 1 and 0).
        bulk_size: OpenSearch only: documents per bulk request (default 500).

    Raises:
        IndexingError: OpenSearch holds other documents than the corpus once the ingest is over (the
            message names missing ids).

    Raises:
        ValueError: a bad option or document.
        OpenSearchUnavailable: the node cannot be reached (``SearchSession`` falls back).
    """
    key = index_key(corpus, encoder, backend, analyzer=analyzer, doc_top_k=doc_top_k, doc_windows=doc_windows)
    if not len(corpus):
        raise ValueError("the corpus holds no document")
    if encoded is not None and encoded.vectors_id and encoded.vectors_id != key.vectors_id:
        raise ValueError("the given encoded documents were made from another corpus, model, analyzer or pruning")
    if vectors is not None and ((vectors.source and vectors.source != key.sparse_id) or len(vectors) != len(corpus)):
        raise ValueError("the given document vectors were made from another corpus, model or pruning")
    if terms is not None and ((terms.source and terms.source != key.terms_id) or len(terms) != len(corpus)):
        raise ValueError("the given BM25 terms were made from another corpus or analyzer")
    report = progress or (lambda _f, _d: None)
    notes: list[str] = []
    name = ""
    be = _make_backend(
        backend,
        index_name or default_index_name(key),
        key.analyzer,
        opensearch_settings,
        shards=shards,
        replicas=replicas,
        chunk_size=bulk_size,
    )
    already: set[str] | None = None  # ids an interrupted ingest left, when resuming it
    if backend == "opensearch":
        name = be.index
        be.ping()
        if resume:
            be.recover()  # an interrupted ingest may have left refreshes off and documents not yet visible
        stale = _stale_reason(be, key, corpus)
        if stale is None and reuse_existing:
            report(1.0, f"reused OpenSearch index {name}")
            stats = IndexStats(len(corpus), 0.0, 0, 0.0, 0.0, name, reused=True)
            return SearchIndex(
                key,
                corpus,
                be,
                encoder,
                None,
                stats,
                doc_top_k,
                query_top_k,
                [f"Reused the existing OpenSearch index `{name}` (same documents, model checkpoint and analyzer)."],
                doc_windows=doc_windows,
            )
        if resume and be.count() > 0:
            already = _resumable_ids(be, key, corpus)
        elif be.count() > 0:
            why = stale or "a rebuild was asked for"
            notes.append(f"Replaced the OpenSearch index `{name}`: {why}.")
            logger.info("replacing OpenSearch index %s: %s", name, why)
            be.clear()
        be.ensure_index()
        write_index_meta(be, key.meta())  # from the start, so that an interrupted ingest can be resumed
    if encoded is None:
        if vectors is not None:
            notes.append(
                "Reused the document vectors already encoded with this model (no re-encoding): only "
                "the BM25 terms were analysed again."
                if terms is None
                else "Reused the document vectors and the BM25 terms already made for this corpus."
            )
        elif terms is not None and encoder is not None:
            notes.append(
                "Reused the BM25 terms already analysed with this analyzer: only the model encoded the documents."
            )
        # progress: the model's share of 0..0.9 (none when it does not run), then Kiwi's, then indexing
        split = 0.0 if vectors is not None or encoder is None else (0.9 if terms is not None else 0.8)
        if vectors is None:
            vectors = encode_vectors(
                corpus,
                encoder,
                batch_size=batch_size,
                doc_top_k=doc_top_k,
                progress=scaled(report, 0.0, split),
                windows=doc_windows,
                disk_cache=disk_cache,
            )
            vectors = replace(vectors, source=key.sparse_id)
        else:
            vectors = replace(vectors, seconds=0.0)
        if terms is None:
            terms = analyse_terms(corpus, key.analyzer, progress=scaled(report, split, 0.9))
            terms = replace(terms, source=key.terms_id)
        else:
            terms = replace(terms, seconds=0.0)
        encoded = assemble(corpus, vectors, terms, key.vectors_id)
        window_counts = vectors.windows
    else:
        window_counts = encoded.windows
    t0 = time.perf_counter()
    to_add = encoded.documents if already is None else [d for d in encoded.documents if d.id not in already]
    if already is not None:
        notes.append(
            f"Resumed the interrupted ingest into `{name}`: {len(already):,} documents were already there, "
            f"{len(to_add):,} added."
        )
    report(0.9, f"indexing {len(to_add)} documents ({backend})")
    if to_add:
        be.add(to_add, progress=scaled(report, 0.9, 1.0))
    if backend == "opensearch":
        _check_complete(be, corpus)
    stats = IndexStats(
        len(encoded.documents),
        encoded.avg_tokens,
        encoded.pruned,
        encoded.seconds,
        time.perf_counter() - t0,
        name,
        windows=window_counts,
    )
    if window_counts is not None and window_counts.sentence():
        notes.append(window_counts.sentence())
    if encoded.pruned:
        notes.append(
            f"{encoded.pruned} of {len(encoded.documents)} document vectors had more than {doc_top_k} active "
            f"tokens and were pruned to their top {doc_top_k} (an untrained model activates most of its vocabulary)."
        )
    report(1.0, "index ready")
    logger.info(
        "built %s index for %s with %s: %d docs in %.1fs",
        backend,
        key.corpus_id,
        key.model or "BM25 only",
        stats.documents,
        stats.encode_seconds + stats.index_seconds,
    )
    return SearchIndex(
        key,
        corpus,
        be,
        encoder,
        encoded.documents,
        stats,
        doc_top_k,
        query_top_k,
        notes,
        input_ids=encoded.input_ids,
        doc_windows=doc_windows,
    )
