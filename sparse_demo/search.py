"""Search service: build and cache indexes, run BM25 / sparse / hybrid searches, explain, highlight.

Pure service functions shared by the Search tab, the CLI and notebooks:

* :func:`build_index` encodes a corpus once (BM25 terms with Kiwi, sparse vectors with the
  encoder) and loads it into a backend (``"memory"`` or ``"opensearch"``);
* :func:`search` runs one query with ``method`` ``"bm25"``, ``"sparse"`` or ``"hybrid"`` and
  returns typed hits carrying both legs' scores and ranks, the fused score and latencies;
* :func:`explain` breaks a document's sparse score into per-token products;
* :func:`highlight` marks the query's matched morphemes and tokens in a passage (HTML-escaped);
* :class:`SearchSession` owns built indexes keyed by ``(corpus id, model, backend)`` so a
  second search, or a second visitor with the same corpus and model, never re-encodes, and it
  falls back to the in-memory backend when OpenSearch is down (at build time or mid-session).

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
    >>> highlight("혈당 <b>", terms=["혈당/NNG"])
    '<mark class="hl-bm25" style="background:#ffe08a">혈당</mark> &lt;b&gt;'
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import shutil
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sparse_demo.corpus import Corpus, load_corpus
from sparse_demo.index import (
    DEFAULT_CANDIDATES,
    FUSION_METHODS,
    IndexDocument,
    MemoryBackend,
    SearchBackend,
    SearchResult,
    TokenContribution,
    fuse,
)
from sparse_demo.index.base import Hit

logger = logging.getLogger(__name__)

BackendName = Literal["memory", "opensearch"]
SearchMethod = Literal["bm25", "sparse", "hybrid"]
FusionName = Literal["minmax", "rrf"]

BACKENDS: tuple[str, ...] = ("memory", "opensearch")
METHODS: tuple[str, ...] = ("bm25", "sparse", "hybrid")
FUSIONS: tuple[str, ...] = FUSION_METHODS

#: Tokens kept per document vector (top by weight); None keeps all.
DEFAULT_DOC_TOP_K = 512
#: Tokens kept per query vector; OpenSearch allows 1024 clauses by default.
DEFAULT_QUERY_TOP_K = 1024
#: The bundled Korean sample corpus (BEIR folder with queries and qrels).
SAMPLE_CORPUS = Path(__file__).resolve().parent.parent / "assets" / "corpus" / "ko_sample"
#: Limits for an uploaded zip of a BEIR folder.
MAX_ZIP_MEMBERS = 10_000
MAX_ZIP_BYTES = 500 * 1024 * 1024

#: ``progress(fraction in [0, 1], description)``; maps directly onto ``gr.Progress``.
StageProgress = Callable[[float, str], None]

_HL_STYLE = {
    "bm25": ("hl-bm25", "#ffe08a"),
    "sparse": ("hl-sparse", "#a5d8ff"),
    "both": ("hl-both", "#b2f2bb"),
}


def _choice(value: str, choices: Sequence[str], what: str) -> str:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
    return value


# --------------------------------------------------------------------------- corpora
def corpus_fingerprint(corpus: Corpus) -> str:
    """A content hash of the documents (ids, titles, texts): equal content, equal id."""
    h = hashlib.sha256()
    for d in corpus.documents:
        for part in (d.id, d.title, d.text):
            h.update(part.encode("utf-8"))
            h.update(b"\x1f")
        h.update(b"\x1e")
    return h.hexdigest()[:16]


def corpus_id(corpus: Corpus) -> str:
    """``<name>-<content hash>``: the corpus part of an index key."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", corpus.name.lower()).strip("-")[:40] or "corpus"
    return f"{slug}-{corpus_fingerprint(corpus)}"


def load_sample_corpus() -> Corpus:
    """The bundled Korean sample corpus (313 passages, queries and qrels)."""
    return load_corpus(SAMPLE_CORPUS)


def _safe_extract(zf: zipfile.ZipFile, dest: Path) -> None:
    members = zf.infolist()
    if len(members) > MAX_ZIP_MEMBERS:
        raise ValueError(f"the zip holds {len(members):,} entries; the limit is {MAX_ZIP_MEMBERS:,}")
    total = sum(m.file_size for m in members)
    if total > MAX_ZIP_BYTES:
        raise ValueError(f"the zip unpacks to {total:,} bytes; the limit is {MAX_ZIP_BYTES:,}")
    root = dest.resolve()
    for m in members:
        target = (dest / m.filename).resolve()
        if not target.is_relative_to(root):
            raise ValueError(f"the zip entry {m.filename!r} points outside the archive; refusing to unpack it")
    zf.extractall(dest)


def load_corpus_file(path: str | Path, *, workdir: str | Path | None = None) -> Corpus:
    """Load an uploaded corpus: ``.jsonl`` / ``.csv`` / ``.tsv``, a BEIR folder, or a zip of one.

    A zip is unpacked (size-limited, no paths outside it) into a fresh folder under
    ``workdir``; its BEIR folder is the one holding ``corpus.jsonl`` (at the top or one
    level down).

    Raises:
        ValueError: with a message meant for users.
    """
    p = Path(path)
    if p.suffix.lower() != ".zip":
        return load_corpus(p)
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError):
        raise ValueError(f"{p.name} is not a readable zip file") from None
    dest = Path(tempfile.mkdtemp(prefix="corpus_", dir=workdir))
    try:
        with zf:
            _safe_extract(zf, dest)
        found = sorted(c.parent for c in dest.rglob("corpus.jsonl") if len(c.relative_to(dest).parts) <= 3)
        found = [f for f in found if "__MACOSX" not in f.parts]
        if not found:
            raise ValueError(
                f"{p.name}: no corpus.jsonl inside; zip a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)"
            )
        if len(found) > 1:
            names = ", ".join(str(f.relative_to(dest)) or "." for f in found[:5])
            raise ValueError(f"{p.name} holds several BEIR folders ({names}); zip one at a time")
        corpus = load_corpus(found[0])
        if found[0] == dest:
            corpus.name = p.stem
        return corpus
    finally:
        shutil.rmtree(dest, ignore_errors=True)


# --------------------------------------------------------------------------- encoding
def _doc_text(title: str, text: str) -> str:
    return f"{title}\n{text}" if title else text


def _prune(encoder: Any, encoding: Any, top_k: int | None) -> tuple[dict[str, float], bool]:
    """The encoder's search vector limited to its ``top_k`` heaviest tokens (ties by token id)."""
    if hasattr(encoder, "search_sparse_vector"):
        sv = encoder.search_sparse_vector(encoding)  # sorted by weight desc, ties by id
        n = len(sv)
        keep = n if top_k is None else min(n, top_k)
        vec = {}
        for i, w in zip(sv.token_ids[:keep].tolist(), sv.weights[:keep].tolist()):
            if w > 0:
                vec[encoder.id_to_token(int(i))] = float(w)
        return vec, keep < n
    full = {t: float(w) for t, w in encoder.search_vector(encoding).items() if w > 0}
    if top_k is None or len(full) <= top_k:
        return full, False
    items = sorted(full.items(), key=lambda kv: -kv[1])[:top_k]
    return dict(items), True


def encode_query(encoder: Any, query: str, top_k: int | None = DEFAULT_QUERY_TOP_K) -> tuple[dict[str, float], bool]:
    """A query's search vector (special tokens dropped) pruned to ``top_k``; ``(vector, pruned)``."""
    enc = encoder.encode([query])[0]
    return _prune(encoder, enc, top_k)


@dataclass(frozen=True)
class EncodedCorpus:
    """Documents ready for any backend, plus what encoding them cost."""

    documents: list[IndexDocument]
    pruned: int
    seconds: float

    @property
    def avg_tokens(self) -> float:
        n = len(self.documents)
        return sum(len(d.sparse) for d in self.documents) / n if n else 0.0


def encode_corpus(
    corpus: Corpus,
    encoder: Any | None,
    *,
    batch_size: int = 32,
    doc_top_k: int | None = DEFAULT_DOC_TOP_K,
    progress: StageProgress | None = None,
) -> EncodedCorpus:
    """BM25 terms (Kiwi ``form/tag``) and pruned sparse vectors of every document.

    The text seen by both legs is ``title + "\\n" + text``. With ``encoder=None`` the
    vectors are empty (a BM25-only index).
    """
    from sparse_demo.korean import bm25_terms

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if doc_top_k is not None and doc_top_k < 1:
        raise ValueError(f"doc_top_k must be >= 1 or None, got {doc_top_k}")
    t0 = time.perf_counter()
    docs = corpus.documents
    total = len(docs)
    out: list[IndexDocument] = []
    pruned = 0
    for start in range(0, total, batch_size):
        batch = docs[start : start + batch_size]
        texts = [_doc_text(d.title, d.text) for d in batch]
        if encoder is not None:
            vectors = []
            for enc in encoder.encode(texts, batch_size=batch_size):
                vec, cut = _prune(encoder, enc, doc_top_k)
                vectors.append(vec)
                pruned += cut
        else:
            vectors = [{} for _ in batch]
        for d, text, vec in zip(batch, texts, vectors):
            out.append(IndexDocument(id=d.id, text=d.text, terms=bm25_terms(text), sparse=vec, title=d.title))
        if progress is not None:
            what = "encoded" if encoder is not None else "tokenised"
            progress(len(out) / max(total, 1), f"{what} {len(out)}/{total} documents")
    return EncodedCorpus(out, pruned, time.perf_counter() - t0)


# --------------------------------------------------------------------------- indexes
@dataclass(frozen=True)
class IndexKey:
    """What identifies a built index: corpus content, model and backend."""

    corpus_id: str
    model: str
    backend: str


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

    def to_json(self) -> dict[str, Any]:
        return {
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
    reused), so a fallback to memory needs no re-encoding.
    """

    key: IndexKey
    corpus: Corpus
    backend: SearchBackend
    encoder: Any | None
    documents: list[IndexDocument] | None
    stats: IndexStats
    doc_top_k: int | None = DEFAULT_DOC_TOP_K
    query_top_k: int | None = DEFAULT_QUERY_TOP_K
    notes: list[str] = field(default_factory=list)
    _queries: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def model_name(self) -> str:
        return self.key.model

    @property
    def has_sparse(self) -> bool:
        return self.encoder is not None

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


def model_key(encoder: Any | None) -> str:
    """The model part of an index key (empty for BM25 only)."""
    return "" if encoder is None else str(getattr(encoder, "name", "") or type(encoder).__name__)


def default_index_name(key: IndexKey, doc_top_k: int | None = DEFAULT_DOC_TOP_K) -> str:
    """A valid OpenSearch index name derived from the key (content hash + model hash)."""
    fp = key.corpus_id.rsplit("-", 1)[-1][:12]
    if not key.model:
        return f"sparse-demo-{fp}-bm25"
    mh = hashlib.sha256(f"{key.model}\x1f{doc_top_k}".encode()).hexdigest()[:8]
    return f"sparse-demo-{fp}-{mh}"


def _opensearch_reusable(backend: Any, corpus: Corpus) -> bool:
    """An existing index holding exactly this corpus (count and first/last documents agree)."""
    if backend.count() != len(corpus):
        return False
    for d in (corpus.documents[0], corpus.documents[-1]):
        got = backend.get(d.id)
        if got is None or got.text != d.text or got.title != d.title:
            return False
    return True


def build_index(
    corpus: Corpus,
    encoder: Any | None,
    backend: BackendName = "memory",
    *,
    progress: StageProgress | None = None,
    index_name: str | None = None,
    batch_size: int = 32,
    doc_top_k: int | None = DEFAULT_DOC_TOP_K,
    query_top_k: int | None = DEFAULT_QUERY_TOP_K,
    encoded: EncodedCorpus | None = None,
    reuse_existing: bool = True,
    opensearch_settings: Any | None = None,
) -> SearchIndex:
    """Encode ``corpus`` and load it into a backend.

    Args:
        corpus: The documents (and optional queries/qrels for gold marks).
        encoder: A ``SpladeEncoder`` (or anything with ``encode`` + ``search_vector``);
            None builds a BM25-only index.
        backend: ``"memory"`` or ``"opensearch"`` (``OPENSEARCH_URL`` etc.).
        progress: ``progress(fraction, description)``.
        index_name: OpenSearch index name; default derived from corpus and model.
        batch_size: Texts per encoder call.
        doc_top_k: Tokens kept per document vector (None: all).
        query_top_k: Tokens kept per query vector (None: all; OpenSearch allows 1024).
        encoded: Already encoded documents (skips encoding).
        reuse_existing: OpenSearch only: when the index already holds exactly this corpus,
            use it without encoding the corpus again.
        opensearch_settings: ``ConnectionSettings`` (default: from the environment).

    Raises:
        ValueError: a bad option or document.
        OpenSearchUnavailable: the node cannot be reached (``SearchSession`` falls back).
    """
    _choice(backend, BACKENDS, "backend")
    key = IndexKey(corpus_id(corpus), model_key(encoder), backend)
    if not len(corpus):
        raise ValueError("the corpus holds no document")
    report = progress or (lambda _f, _d: None)
    if backend == "opensearch":
        from sparse_demo.index.opensearch import OpenSearchBackend

        name = index_name or default_index_name(key, doc_top_k)
        be: Any = OpenSearchBackend(name, settings=opensearch_settings)
        be.ping()
        if reuse_existing and encoded is None and _opensearch_reusable(be, corpus):
            report(1.0, f"reused OpenSearch index {name}")
            stats = IndexStats(len(corpus), 0.0, 0, 0.0, 0.0, name, reused=True)
            return SearchIndex(key, corpus, be, encoder, None, stats, doc_top_k, query_top_k,
                               [f"Reused the existing OpenSearch index `{name}` (same documents)."])
    else:
        name = ""
        be = MemoryBackend()
    if encoded is None:
        encoded = encode_corpus(
            corpus, encoder, batch_size=batch_size, doc_top_k=doc_top_k,
            progress=lambda f, d: report(0.9 * f, d),
        )
    t0 = time.perf_counter()
    report(0.9, f"indexing {len(encoded.documents)} documents ({backend})")
    be.add(encoded.documents, progress=lambda done, total: report(0.9 + 0.1 * done / max(total, 1),
                                                                  f"indexed {done}/{total}"))
    stats = IndexStats(len(encoded.documents), encoded.avg_tokens, encoded.pruned, encoded.seconds,
                       time.perf_counter() - t0, name)
    notes = []
    if encoded.pruned:
        notes.append(
            f"{encoded.pruned} of {len(encoded.documents)} document vectors had more than {doc_top_k} active "
            f"tokens and were pruned to their top {doc_top_k} (an untrained model activates most of its vocabulary)."
        )
    report(1.0, "index ready")
    logger.info("built %s index for %s with %s: %d docs in %.1fs", backend, key.corpus_id, key.model or "BM25 only",
                stats.documents, stats.encode_seconds + stats.index_seconds)
    return SearchIndex(key, corpus, be, encoder, encoded.documents, stats, doc_top_k, query_top_k, notes)


# --------------------------------------------------------------------------- searching
@dataclass(frozen=True)
class SearchHit:
    """One result row: the fused (or single-leg) score and each leg's evidence.

    Leg fields are None where that leg did not retrieve the document among its candidates
    (or was not run). ``relevance`` is the qrels grade when the query is one of the
    corpus's judged queries, else None.
    """

    rank: int
    id: str
    title: str
    text: str
    score: float
    bm25_score: float | None
    bm25_rank: int | None
    sparse_score: float | None
    sparse_rank: int | None
    relevance: int | None = None

    @property
    def gold(self) -> bool:
        return bool(self.relevance and self.relevance > 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id": self.id,
            "score": self.score,
            "bm25": {"score": self.bm25_score, "rank": self.bm25_rank},
            "sparse": {"score": self.sparse_score, "rank": self.sparse_rank},
            "title": self.title,
            "gold": self.gold if self.relevance is not None else None,
        }


@dataclass(frozen=True)
class SearchOutcome:
    """A search: hits, the legs as the backend returned them, latency and notes."""

    query: str
    method: str
    fusion: str | None
    weight: float | None
    k: int
    hits: list[SearchHit]
    legs: dict[str, SearchResult]
    backend: str
    key: IndexKey
    query_terms: list[str]
    query_vector: dict[str, float]
    encode_ms: float
    search_ms: float
    total_ms: float
    gold_query_id: str | None = None
    gold_total: int = 0
    notes: tuple[str, ...] = ()

    @property
    def ids(self) -> list[str]:
        return [h.id for h in self.hits]

    @property
    def gold_found(self) -> int:
        return sum(h.gold for h in self.hits)

    def to_json(self) -> list[dict[str, Any]]:
        return [h.to_json() for h in self.hits]


def _normalize_query(text: str) -> str:
    return " ".join(text.split())


def gold_query(corpus: Corpus, query: str) -> str | None:
    """The id of the corpus query whose text equals ``query`` (whitespace-normalised) and has qrels."""
    q = _normalize_query(query)
    for cq in corpus.queries:
        if _normalize_query(cq.text) == q and cq.id in corpus.qrels:
            return cq.id
    return None


def _validate_weight(weight: float) -> float:
    try:
        w = float(weight)
    except (TypeError, ValueError):
        raise ValueError(f"weight must be a number in [0, 1], got {weight!r}") from None
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"weight (of the sparse leg) must be in [0, 1], got {weight!r}")
    return w


def search(
    index: SearchIndex,
    query: str,
    method: SearchMethod = "hybrid",
    k: int = 10,
    fusion: FusionName = "minmax",
    weight: float = 0.5,
    candidates: int | None = None,
) -> SearchOutcome:
    """Search one query.

    Args:
        index: A built :class:`SearchIndex`.
        query: The query text.
        method: ``"bm25"`` (Kiwi morphemes), ``"sparse"`` (dot product) or ``"hybrid"``.
        k: Hits to return.
        fusion: Hybrid only: ``"minmax"`` (min-max normalised, weighted arithmetic mean) or
            ``"rrf"`` (reciprocal rank fusion, rank constant 60, unweighted as OpenSearch's default).
        weight: Hybrid ``minmax`` only: the sparse leg's weight; BM25 gets ``1 - weight``.
        candidates: Hits fetched per leg before fusion (default ``max(k, 100)``).

    Returns:
        SearchOutcome; hybrid scores equal :func:`sparse_demo.index.fuse` applied to the legs.

    Raises:
        ValueError: bad options or query; OpenSearchUnavailable: the node went away.
    """
    _choice(method, METHODS, "method")
    _choice(fusion, FUSIONS, "fusion")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    w = _validate_weight(weight)
    text = (query or "").strip()
    if not text:
        raise ValueError("the query is empty; type a question or keywords")
    from sparse_demo.korean import bm25_terms

    n_cand = max(k, DEFAULT_CANDIDATES) if candidates is None else int(candidates)
    if n_cand < k:
        raise ValueError(f"candidates must be >= k ({k}), got {candidates}")
    t_start = time.perf_counter()
    notes: list[str] = []
    terms: list[str] = bm25_terms(text) if method in ("bm25", "hybrid") else []
    qvec: dict[str, float] = {}
    t_enc = time.perf_counter()
    if method in ("sparse", "hybrid"):
        qvec, cut = index.query_vector(text)
        if cut:
            notes.append(f"The query vector was pruned to its top {index.query_top_k} tokens.")
        if not qvec:
            notes.append("The model activated no token for this query (empty sparse vector).")
    encode_ms = (time.perf_counter() - t_enc) * 1000
    if method in ("bm25", "hybrid") and not terms:
        notes.append("The query has no BM25 term (only punctuation?).")
    be = index.backend
    t_search = time.perf_counter()
    legs: dict[str, SearchResult] = {}
    fetch = n_cand if method == "hybrid" else k
    if method in ("bm25", "hybrid"):
        legs["bm25"] = be.search_bm25(terms, fetch) if terms else SearchResult("bm25", [], 0.0, be.name)
    if method in ("sparse", "hybrid"):
        legs["sparse"] = be.search_sparse(qvec, fetch) if qvec else SearchResult("sparse", [], 0.0, be.name)
    rows: list[tuple[str, float, float | None, int | None, float | None, int | None]] = []
    if method == "hybrid":
        weights = (1.0 - w, w) if fusion == "minmax" else None
        fused = fuse([legs["bm25"], legs["sparse"]], method=fusion, weights=weights, k=k)
        for h in fused.hits:
            rows.append((h.id, h.score, h.leg_scores[0], h.leg_ranks[0], h.leg_scores[1], h.leg_ranks[1]))
    else:
        for h in _ranked(legs[method].hits)[:k]:
            if method == "bm25":
                rows.append((h.id, h.score, h.score, h.rank, None, None))
            else:
                rows.append((h.id, h.score, None, None, h.score, h.rank))
    search_ms = (time.perf_counter() - t_search) * 1000
    qid = gold_query(index.corpus, text)
    judged = index.corpus.qrels.get(qid, {}) if qid else {}
    hits = []
    for rank, (doc_id, score, bs, br, ss, sr) in enumerate(rows, start=1):
        doc = index.corpus.get(doc_id)
        hits.append(
            SearchHit(
                rank, doc_id, doc.title if doc else "", doc.text if doc else "", float(score),
                bs, br, ss, sr, judged.get(doc_id, 0) if qid else None,
            )
        )
    total_ms = (time.perf_counter() - t_start) * 1000
    return SearchOutcome(
        query=text, method=method, fusion=fusion if method == "hybrid" else None,
        weight=w if method == "hybrid" and fusion == "minmax" else None, k=k, hits=hits, legs=legs,
        backend=be.name, key=index.key, query_terms=terms, query_vector=qvec, encode_ms=encode_ms,
        search_ms=search_ms, total_ms=total_ms, gold_query_id=qid,
        gold_total=sum(1 for v in judged.values() if v > 0), notes=tuple(notes),
    )


def _ranked(hits: Sequence[Hit]) -> list[Hit]:
    """Hits best first, ties by id, with 1-based ranks (backends already do this; be sure)."""
    ordered = sorted(hits, key=lambda h: (-h.score, h.id))
    return [Hit(h.id, h.score, r) for r, h in enumerate(ordered, start=1)]


# --------------------------------------------------------------------------- explaining
@dataclass(frozen=True)
class Explanation:
    """Why a document matched: sparse per-token products and the shared BM25 morphemes."""

    doc_id: str
    sparse_score: float
    contributions: list[TokenContribution]
    matched_terms: list[str]

    @property
    def tokens(self) -> list[str]:
        return [c.token for c in self.contributions]

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"token": c.token, "query_weight": c.query_weight, "doc_weight": c.doc_weight,
             "product": c.contribution}
            for c in self.contributions
        ]


def explain(index: SearchIndex, doc_id: str, query: str) -> Explanation:
    """Per-token contributions ``q[t] * d[t]`` to ``doc_id``'s sparse score for ``query``.

    BM25 terms shared by the query and the document are listed too (for highlighting).
    With a BM25-only index the contributions are empty.

    Raises:
        KeyError: the document is not in the corpus/index.
    """
    from sparse_demo.korean import bm25_terms

    doc = index.corpus.get(doc_id)
    if doc is None:
        raise KeyError(f"document {doc_id!r} is not in the corpus")
    text = (query or "").strip()
    qterms = set(bm25_terms(text)) if text else set()
    dterms = bm25_terms(_doc_text(doc.title, doc.text))
    matched = sorted({t for t in dterms if t in qterms})
    if index.encoder is None or not text:
        return Explanation(doc_id, 0.0, [], matched)
    qvec, _ = index.query_vector(text)
    if not qvec:
        return Explanation(doc_id, 0.0, [], matched)
    exp = index.backend.explain_sparse(doc_id, qvec)  # type: ignore[attr-defined]
    return Explanation(doc_id, exp.score, list(exp.contributions), matched)


# --------------------------------------------------------------------------- highlighting
def _token_spans(text: str, token: str) -> list[tuple[int, int]]:
    """Where a vocabulary token's surface occurs; ``▁`` tokens only at a word start."""
    from sparse_demo.korean import is_punctuation, strip_marker

    surface = strip_marker(token)
    if not surface or is_punctuation(surface):
        return []
    word_start = token.startswith("▁")
    spans = []
    lowered, needle = text.lower(), surface.lower()
    start = lowered.find(needle)
    while start >= 0:
        if not word_start or start == 0 or not lowered[start - 1].isalnum():
            spans.append((start, start + len(needle)))
        start = lowered.find(needle, start + 1)
    return spans


def highlight(text: str, terms: Iterable[str] = (), tokens: Iterable[str] = ()) -> str:
    """The passage as HTML with matched BM25 morphemes and sparse tokens marked.

    Args:
        text: The passage (plain text; every character is HTML-escaped).
        terms: BM25 terms (``form/tag``): Kiwi morphemes of ``text`` with these labels are
            marked ``hl-bm25``.
        tokens: Vocabulary tokens (``▁혈당``, ``##료``): occurrences of their surface are
            marked ``hl-sparse`` (a ``▁`` token only at a word start).

    Characters matched by both are marked ``hl-both``. Line breaks become ``<br>``.
    """
    from sparse_demo.korean import morphemes

    if not text:
        return ""
    flags = [0] * len(text)  # bit 1: bm25, bit 2: sparse
    term_set = set(terms)
    if term_set:
        for m in morphemes(text):
            if m.label in term_set:
                for i in range(max(0, m.start), min(len(text), m.end)):
                    flags[i] |= 1
    for tok in dict.fromkeys(tokens):
        for s, e in _token_spans(text, tok):
            for i in range(s, e):
                flags[i] |= 2
    out: list[str] = []
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and flags[j] == flags[i]:
            j += 1
        chunk = html.escape(text[i:j]).replace("\n", "<br>")
        if flags[i]:
            cls, color = _HL_STYLE[{1: "bm25", 2: "sparse", 3: "both"}[flags[i]]]
            out.append(f'<mark class="{cls}" style="background:{color}">{chunk}</mark>')
        else:
            out.append(chunk)
        i = j
    return "".join(out)


HIGHLIGHT_LEGEND = (
    '<mark class="hl-bm25" style="background:#ffe08a">BM25 morpheme</mark> '
    '<mark class="hl-sparse" style="background:#a5d8ff">sparse token</mark> '
    '<mark class="hl-both" style="background:#b2f2bb">both</mark>'
)


def passage_html(hit: SearchHit, explanation: Explanation | None, query_terms: Sequence[str] = ()) -> str:
    """A hit's title and text with matches marked (HTML, escaped), plus a legend."""
    terms = explanation.matched_terms if explanation is not None else list(query_terms)
    tokens = explanation.tokens if explanation is not None else []
    gold = " ✅ gold" if hit.gold else ""
    title = highlight(hit.title, terms, tokens) if hit.title else ""
    head = f"<h4>{html.escape(hit.id)}{gold}{': ' + title if title else ''}</h4>"
    return f'<div class="search-passage">{head}<p>{highlight(hit.text, terms, tokens)}</p>' \
           f'<p style="font-size:0.85em">{HIGHLIGHT_LEGEND}</p></div>'


# --------------------------------------------------------------------------- session
class SearchSession:
    """Built indexes shared by the process, keyed by ``(corpus id, model, backend)``.

    ``get_or_build`` builds an index once (concurrent callers with the same key wait for
    the first build and reuse it) and keeps at most ``max_indexes`` (least recently used
    dropped). OpenSearch problems never escape as crashes: building falls back to the
    memory backend with a note, and so does a search whose node stopped mid-session.

    Args:
        max_indexes: How many built indexes to keep.
        build_kwargs: Defaults passed to :func:`build_index` (e.g. ``doc_top_k``).
    """

    def __init__(self, max_indexes: int = 8, **build_kwargs: Any) -> None:
        if max_indexes < 1:
            raise ValueError(f"max_indexes must be >= 1, got {max_indexes}")
        self.max_indexes = max_indexes
        self.build_kwargs = build_kwargs
        self._indexes: OrderedDict[IndexKey, SearchIndex] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[IndexKey, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._indexes)

    def get(self, key: IndexKey) -> SearchIndex | None:
        with self._lock:
            idx = self._indexes.get(key)
            if idx is not None:
                self._indexes.move_to_end(key)
            return idx

    def _put(self, index: SearchIndex) -> None:
        with self._lock:
            self._indexes[index.key] = index
            self._indexes.move_to_end(index.key)
            while len(self._indexes) > self.max_indexes:
                old, _ = self._indexes.popitem(last=False)
                logger.info("dropped cached index %s", old)

    def key_for(self, corpus: Corpus, encoder: Any | None, backend: str) -> IndexKey:
        return IndexKey(corpus_id(corpus), model_key(encoder), _choice(backend, BACKENDS, "backend"))

    def get_or_build(
        self,
        corpus: Corpus,
        encoder: Any | None,
        backend: BackendName = "memory",
        *,
        progress: StageProgress | None = None,
        fallback: bool = True,
        **kwargs: Any,
    ) -> tuple[SearchIndex, list[str]]:
        """The cached index for this corpus/model/backend, built when missing.

        Returns:
            ``(index, notes)``; ``notes`` says whether it was reused or built, and why the
            memory backend answers when OpenSearch was asked for but is unreachable.
        """
        from sparse_demo.index.opensearch import OpenSearchUnavailable

        key = self.key_for(corpus, encoder, backend)
        found = self.get(key)
        if found is not None:
            return found, [f"Reused the cached {backend} index (no re-encoding)."]
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            found = self.get(key)
            if found is not None:
                return found, [f"Reused the {backend} index another request just built."]
            opts = {**self.build_kwargs, **kwargs}
            try:
                # Encoded documents of another backend's index for the same corpus+model: reuse them.
                encoded = self._encoded_for(key)
                if encoded is not None and "encoded" not in opts:
                    opts["encoded"] = encoded
                index = build_index(corpus, encoder, backend, progress=progress, **opts)
            except OpenSearchUnavailable as exc:
                if not fallback:
                    raise
                note = f"OpenSearch is unavailable: {exc} Using the in-memory backend instead."
                logger.warning("%s", note)
                mem, notes = self.get_or_build(corpus, encoder, "memory", progress=progress, fallback=False,
                                               **kwargs)
                return mem, [note, *notes]
            self._put(index)
            return index, [f"Built the {index.backend_name} index.", *index.notes]

    def _encoded_for(self, key: IndexKey) -> EncodedCorpus | None:
        with self._lock:
            for other in self._indexes.values():
                if other.key.corpus_id == key.corpus_id and other.key.model == key.model and other.documents:
                    return EncodedCorpus(other.documents, other.stats.pruned_docs, 0.0)
        return None

    def memory_twin(self, index: SearchIndex, progress: StageProgress | None = None) -> SearchIndex:
        """The memory index for ``index``'s corpus and model, built from its encoded documents."""
        kwargs: dict[str, Any] = {"doc_top_k": index.doc_top_k, "query_top_k": index.query_top_k}
        if index.documents:
            kwargs["encoded"] = EncodedCorpus(index.documents, index.stats.pruned_docs, 0.0)
        mem, _ = self.get_or_build(index.corpus, index.encoder, "memory", progress=progress, fallback=False,
                                   **kwargs)
        return mem

    def search(self, index: SearchIndex, query: str, *, progress: StageProgress | None = None,
               **kwargs: Any) -> tuple[SearchOutcome, SearchIndex]:
        """:func:`search`, falling back to a memory index when OpenSearch stops answering.

        Returns:
            ``(outcome, index that answered)``; the outcome's notes say when it fell back.
        """
        from sparse_demo.index.opensearch import OpenSearchUnavailable

        try:
            return search(index, query, **kwargs), index
        except OpenSearchUnavailable as exc:
            note = f"OpenSearch stopped answering: {exc} Searched the in-memory index instead."
            logger.warning("%s", note)
            mem = self.memory_twin(index, progress)
            out = search(mem, query, **kwargs)
            from dataclasses import replace

            return replace(out, notes=(note, *out.notes)), mem

    def explain(self, index: SearchIndex, doc_id: str, query: str) -> tuple[Explanation, SearchIndex, list[str]]:
        """:func:`explain` with the same OpenSearch fallback as :meth:`search`."""
        from sparse_demo.index.opensearch import OpenSearchUnavailable

        try:
            return explain(index, doc_id, query), index, []
        except OpenSearchUnavailable as exc:
            mem = self.memory_twin(index)
            note = f"OpenSearch stopped answering: {exc} Explained with the in-memory index instead."
            return explain(mem, doc_id, query), mem, [note]


def opensearch_status(settings: Any | None = None) -> tuple[bool, str]:
    """``(reachable, message)`` for the configured OpenSearch node (never raises)."""
    from sparse_demo.index.opensearch import OpenSearchBackend, OpenSearchUnavailable

    be = OpenSearchBackend("sparse-demo-probe", settings=settings)
    try:
        info = be.ping()
    except OpenSearchUnavailable as exc:
        return False, str(exc)
    version = (info or {}).get("version", {}).get("number", "?")
    return True, f"OpenSearch {version} is reachable at {be.settings.display_url}."


def frame_rows(hits: Sequence[SearchHit]) -> list[dict[str, Any]]:
    """Hits as table rows (for pandas / CSV)."""
    return [
        {
            "rank": h.rank, "gold": "✅" if h.gold else ("" if h.relevance is None else "·"), "id": h.id,
            "title": h.title, "score": round(h.score, 6),
            "bm25_score": None if h.bm25_score is None else round(h.bm25_score, 4), "bm25_rank": h.bm25_rank,
            "sparse_score": None if h.sparse_score is None else round(h.sparse_score, 4),
            "sparse_rank": h.sparse_rank,
        }
        for h in hits
    ]


def as_mapping(vec: Mapping[str, float], top: int = 10) -> str:
    """The heaviest ``top`` tokens of a vector as ``token:weight`` text (for status lines)."""
    items = sorted(vec.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return ", ".join(f"{t} {w:.2f}" for t, w in items)


__all__ = [
    "BACKENDS",
    "DEFAULT_DOC_TOP_K",
    "DEFAULT_QUERY_TOP_K",
    "FUSIONS",
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
    "as_mapping",
    "build_index",
    "corpus_fingerprint",
    "corpus_id",
    "default_index_name",
    "encode_corpus",
    "encode_query",
    "explain",
    "frame_rows",
    "gold_query",
    "highlight",
    "load_corpus_file",
    "load_sample_corpus",
    "opensearch_status",
    "passage_html",
    "search",
]
