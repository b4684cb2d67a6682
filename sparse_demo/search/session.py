"""Built indexes shared by a process, with an in-memory fallback when OpenSearch is down.

The cache is an LRU bounded by a count and by an estimate of bytes (:func:`estimate_index_bytes`);
both budgets come from :class:`sparse_demo.limits.Limits` (``SPARSE_DEMO_MAX_INDEXES``,
``SPARSE_DEMO_INDEX_CACHE_MB``) through :meth:`SearchSession.from_limits`.

Beside the indexes, a session keeps the two halves of encoded corpora apart (:class:`PartCache`):
document vectors by (corpus content, model fingerprint, document pruning) and BM25 terms by
(corpus content, analyzer). Changing only the analyzer therefore rebuilds the BM25 leg from the
kept vectors without running the model, and changing only the model re-encodes without running
Kiwi. The halves share one LRU bounded by twice the index count and by the same byte budget; a
half used by a kept index is the same object (counted in both estimates), so the two caches
together hold at most twice the byte budget and, while their indexes are kept, about once.

An index of a visitor's upload (a corpus whose ``owner`` is set) belongs to that visitor: it is built
under a :class:`~sparse_demo.limits.Deadline` (``SPARSE_DEMO_MAX_INDEX_SECONDS``), a visitor keeps at
most ``max_per_owner`` of them (their least recently used one goes first), and
:meth:`SearchSession.forget_owner` drops them (and their cached halves) when the visitor leaves.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sparse_demo.corpus import Corpus
from sparse_demo.encoder import Encoder
from sparse_demo.limits import Deadline
from sparse_demo.progress import Progress
from sparse_demo.search.build import IndexKey, SearchIndex, build_index, index_key
from sparse_demo.search.encode import DocumentTerms, DocumentVectors
from sparse_demo.search.explain import Explanation, explain
from sparse_demo.search.options import DEFAULT_ANALYZER, DEFAULT_DOC_TOP_K, DEFAULT_DOC_WINDOWS, BackendName
from sparse_demo.search.query import SearchOutcome, search

logger = logging.getLogger(__name__)

#: Bytes per entry of a retained document vector (a Python dict: token str, float, hash slot).
VECTOR_ENTRY_BYTES = 100
#: Bytes per retained BM25 term of a document (a Python str and its list slot).
TERM_BYTES = 70


def estimate_index_bytes(index: SearchIndex) -> int:
    """An estimate of the process memory one built index holds (what the session's byte budget counts).

    The sum of:

    * the corpus text (UTF-8 bytes of every title and text);
    * the retained encoded documents (kept for a memory fallback and for another backend):
      :data:`VECTOR_ENTRY_BYTES` per sparse-vector entry and :data:`TERM_BYTES` per BM25 term;
    * memory backend only: the postings matrices of both legs, as the backend reports them
      (:attr:`sparse_demo.index.memory.MemoryBackend.nbytes`);
    * the input token ids kept for the corpus report (their arrays' bytes).

    An OpenSearch index's postings live in the cluster and are not counted.

    Args:
        index: a built :class:`~sparse_demo.search.build.SearchIndex`.
    """
    total = sum(len(d.text.encode("utf-8")) + len((d.title or "").encode("utf-8")) for d in index.corpus.documents)
    docs = index.documents or []
    entries = sum(len(d.sparse) for d in docs)
    terms = sum(len(d.terms) for d in docs)
    total += entries * VECTOR_ENTRY_BYTES + terms * TERM_BYTES
    if index.backend_name == "memory":
        total += index.backend.nbytes
    ids = index.input_ids
    if ids is not None:
        total += int(getattr(ids.indptr, "nbytes", 0)) + int(getattr(ids.ids, "nbytes", 0))
    return int(total)


def estimate_part_bytes(part: DocumentVectors | DocumentTerms) -> int:
    """Estimated bytes of one half of an encoded corpus, with :func:`estimate_index_bytes`'s rates.

    Document vectors: :data:`VECTOR_ENTRY_BYTES` per entry plus the input ids' arrays; BM25 terms:
    :data:`TERM_BYTES` per term. A half shared with a kept index is counted in both caches (the
    estimate errs on the safe side).
    """
    if isinstance(part, DocumentVectors):
        total = sum(len(v) for v in part.vectors) * VECTOR_ENTRY_BYTES
        ids = part.input_ids
        if ids is not None:
            total += int(getattr(ids.indptr, "nbytes", 0)) + int(getattr(ids.ids, "nbytes", 0))
        return int(total)
    return sum(len(t) for t in part.terms) * TERM_BYTES


Part = DocumentVectors | DocumentTerms


class PartCache:
    """An LRU of halves of encoded corpora (vectors and terms), bounded by a count and estimated bytes.

    Keys are :class:`IndexKey` values with the fields a half does not depend on blanked
    (:meth:`IndexKey.sparse_key` blanks the analyzer, :meth:`IndexKey.terms_key` the model
    fingerprint, so the two kinds never share a key), and any other field of the key keeps entries
    apart. The least recently used entries are dropped until both budgets hold; the newest is
    always kept. Safe under concurrent handlers.

    Args:
        max_entries: How many entries to keep (>= 1).
        max_bytes: Estimated bytes (:func:`estimate_part_bytes`) all entries may hold (None: no budget).
    """

    def __init__(self, max_entries: int, max_bytes: int | None = None) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[IndexKey, Part] = OrderedDict()
        self._sizes: dict[IndexKey, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def cached_bytes(self) -> int:
        with self._lock:
            return sum(self._sizes.values())

    def cached_keys(self) -> list[IndexKey]:
        """The kept keys, least recently used first."""
        with self._lock:
            return list(self._items)

    def get(self, key: IndexKey) -> Part | None:
        with self._lock:
            part = self._items.get(key)
            if part is not None:
                self._items.move_to_end(key)
            return part

    def put(self, key: IndexKey, part: Part) -> None:
        size = estimate_part_bytes(part)
        with self._lock:
            self._items[key] = part
            self._sizes[key] = size
            self._items.move_to_end(key)
            while len(self._items) > 1 and (
                len(self._items) > self.max_entries
                or (self.max_bytes is not None and sum(self._sizes.values()) > self.max_bytes)
            ):
                old, dropped = self._items.popitem(last=False)
                logger.info(
                    "dropped cached %s of %s (%d estimated bytes)", type(dropped).__name__, old, self._sizes.pop(old, 0)
                )

    def drop_where(self, predicate: Callable[[IndexKey], bool]) -> int:
        """Drop every entry whose key satisfies ``predicate``; returns how many."""
        with self._lock:
            gone = [k for k in self._items if predicate(k)]
            for k in gone:
                del self._items[k]
                self._sizes.pop(k, None)
        return len(gone)


class SearchSession:
    """Built indexes shared by the process, keyed by :class:`IndexKey`.

    The key holds the corpus content, the model's checkpoint fingerprint, the BM25 analyzer, the
    document pruning and the backend, so a checkpoint replaced under the same name is rebuilt.

    ``get_or_build`` builds an index once (concurrent callers with the same key wait for
    the first build and reuse it). The cache is an LRU bounded by ``max_indexes`` and by
    ``max_bytes`` of :func:`estimate_index_bytes` together: the least recently used indexes are
    dropped until both hold (the newest index is always kept, even alone over the byte budget, and
    a warning says so). A dropped index stays usable by whoever still holds it; the Search tab
    rebuilds it on the next search (``get_or_build`` with the same key). The halves of the encoded
    documents are kept apart as well (:attr:`parts`, a :class:`PartCache` of ``2 * max_indexes``
    entries within ``max_bytes``), so a build whose key differs only in the analyzer reuses the document
    vectors (the model does not run) and one differing only in the model reuses the BM25 terms
    (Kiwi does not run); both work for either backend. OpenSearch problems never
    escape as crashes: building falls back to the memory backend with a note, and so does a search
    whose node stopped mid-session. Every method is safe under concurrent handlers.

    Args:
        max_indexes: How many built indexes to keep.
        max_bytes: Estimated bytes all kept indexes may hold together (None: no byte budget).
        max_seconds: Time budget of building one index of a visitor's upload (None: none).
        max_per_owner: Indexes of one visitor's uploads kept at once.
        build_kwargs: Defaults passed to :func:`build_index` (e.g. ``doc_top_k``).

    Raises:
        ValueError: ``max_indexes`` < 1 or ``max_bytes`` < 1.
    """

    def __init__(
        self,
        max_indexes: int = 8,
        max_bytes: int | None = None,
        *,
        max_seconds: float | None = None,
        max_per_owner: int = 2,
        **build_kwargs: Any,
    ) -> None:
        if max_indexes < 1:
            raise ValueError(f"max_indexes must be >= 1, got {max_indexes}")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1 (or None for no byte budget), got {max_bytes}")
        self.max_indexes = max_indexes
        self.max_bytes = max_bytes
        self.build_kwargs = build_kwargs
        self._indexes: OrderedDict[IndexKey, SearchIndex] = OrderedDict()
        self._sizes: dict[IndexKey, int] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[IndexKey, threading.Lock] = {}
        self.parts = PartCache(2 * max_indexes, max_bytes)
        self.max_seconds = max_seconds
        self.max_per_owner = max(1, int(max_per_owner))
        self._owners: dict[IndexKey, set[str | None]] = {}  # None: also used by a shared corpus

    @classmethod
    def from_limits(cls, limits: Any, **build_kwargs: Any) -> SearchSession:
        """A session with the budgets of a :class:`sparse_demo.limits.Limits` (``max_indexes``,
        ``index_cache_bytes``, ``max_index_seconds``)."""
        return cls(
            max_indexes=int(limits.max_indexes),
            max_bytes=int(limits.index_cache_bytes),
            max_seconds=getattr(limits, "max_index_seconds", None),
            **build_kwargs,
        )

    def __len__(self) -> int:
        with self._lock:
            return len(self._indexes)

    @property
    def cached_bytes(self) -> int:
        """The estimated bytes of the kept indexes (:func:`estimate_index_bytes`)."""
        with self._lock:
            return sum(self._sizes.values())

    def cached_keys(self) -> list[IndexKey]:
        """The kept keys, least recently used first."""
        with self._lock:
            return list(self._indexes)

    def get(self, key: IndexKey) -> SearchIndex | None:
        with self._lock:
            idx = self._indexes.get(key)
            if idx is not None:
                self._indexes.move_to_end(key)
            return idx

    def _put(self, index: SearchIndex) -> list[str]:
        """Keep ``index`` and evict by count and bytes; returns notes for the user (may be empty)."""
        size = estimate_index_bytes(index)
        notes: list[str] = []
        with self._lock:
            self._indexes[index.key] = index
            self._sizes[index.key] = size
            self._indexes.move_to_end(index.key)
            while len(self._indexes) > 1 and (
                len(self._indexes) > self.max_indexes
                or (self.max_bytes is not None and sum(self._sizes.values()) > self.max_bytes)
            ):
                old, _ = self._indexes.popitem(last=False)
                freed = self._sizes.pop(old, 0)
                self._owners.pop(old, None)
                lock = self._key_locks.get(old)
                if lock is not None and not lock.locked():  # at worst a later caller builds it twice
                    del self._key_locks[old]
                logger.info("dropped cached index %s (%d estimated bytes)", old, freed)
            if self.max_bytes is not None and size > self.max_bytes:
                notes.append(
                    f"This index takes about {size / 1e6:,.1f} MB, more than the index cache's budget of "
                    f"{self.max_bytes / 1e6:,.1f} MB (SPARSE_DEMO_INDEX_CACHE_MB): it is kept alone and dropped "
                    "when another index is built."
                )
        for n in notes:
            logger.warning("%s", n)
        return notes

    def key_for(self, corpus: Corpus, encoder: Encoder | None, backend: str, **kwargs: Any) -> IndexKey:
        """The key :meth:`get_or_build` uses for these arguments (``analyzer``, ``doc_top_k``, ``doc_windows``)."""
        opts = {**self.build_kwargs, **kwargs}
        return index_key(
            corpus,
            encoder,
            backend,
            analyzer=opts.get("analyzer", DEFAULT_ANALYZER),
            doc_top_k=opts.get("doc_top_k", DEFAULT_DOC_TOP_K),
            doc_windows=opts.get("doc_windows", DEFAULT_DOC_WINDOWS),
        )

    def get_or_build(
        self,
        corpus: Corpus,
        encoder: Encoder | None,
        backend: BackendName = "memory",
        *,
        progress: Progress | None = None,
        fallback: bool = True,
        **kwargs: Any,
    ) -> tuple[SearchIndex, list[str]]:
        """The cached index for this corpus/model/backend, built when missing.

        Returns:
            ``(index, notes)``; ``notes`` says whether it was reused or built, and why the
            memory backend answers when OpenSearch was asked for but is unreachable.
        """
        from sparse_demo.index.opensearch import OpenSearchUnavailable

        key = self.key_for(corpus, encoder, backend, **kwargs)
        owner = getattr(corpus, "owner", None)
        if owner is not None and self.max_seconds is not None:
            progress = Deadline(self.max_seconds, "Indexing your upload").wrap(progress)
        found = self.get(key)
        if found is not None:
            self._tag(key, owner)
            return found, [f"Reused the cached {backend} index (no re-encoding)."]
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            found = self.get(key)
            if found is not None:
                self._tag(key, owner)
                return found, [f"Reused the {backend} index another request just built."]
            opts = {**self.build_kwargs, **kwargs}
            try:
                if "encoded" not in opts:  # the halves already made for this corpus: reuse them
                    vectors = self.parts.get(key.sparse_key()) if key.fingerprint else None
                    if isinstance(vectors, DocumentVectors):
                        opts.setdefault("vectors", vectors)
                    terms = self.parts.get(key.terms_key())
                    if isinstance(terms, DocumentTerms):
                        opts.setdefault("terms", terms)
                index = build_index(corpus, encoder, backend, progress=progress, **opts)
            except OpenSearchUnavailable as exc:
                if not fallback:
                    raise
                note = f"OpenSearch is unavailable: {exc} Using the in-memory backend instead."
                logger.warning("%s", note)
                mem, notes = self.get_or_build(corpus, encoder, "memory", progress=progress, fallback=False, **kwargs)
                return mem, [note, *notes]
            budget_notes = self._put(index)
            self._keep_parts(index)
            self._tag(index.key, owner)
            return index, [f"Built the {index.backend_name} index.", *index.notes, *budget_notes]

    def _keep_parts(self, index: SearchIndex) -> None:
        """Keep the built index's document vectors and BM25 terms for later builds (shared, not copied)."""
        if index.key.fingerprint:
            vectors = index.document_vectors()
            if vectors is not None:
                self.parts.put(index.key.sparse_key(), vectors)
        terms = index.document_terms()
        if terms is not None:
            self.parts.put(index.key.terms_key(), terms)

    def drop_where(self, predicate: Callable[[IndexKey], bool]) -> int:
        """Drop every kept index and every kept half whose key satisfies ``predicate``.

        The halves' keys are index keys with some fields blanked (:meth:`IndexKey.sparse_key`,
        :meth:`IndexKey.terms_key`), so a predicate on the corpus id (or on any field that is not
        blanked) drops an index and its halves together. Returns how many entries were dropped.
        """
        with self._lock:
            gone = [k for k in self._indexes if predicate(k)]
            for k in gone:
                self._drop(k)
        return len(gone) + self.parts.drop_where(predicate)

    def _tag(self, key: IndexKey, owner: str | None) -> None:
        """Record that ``owner`` (None: a shared corpus) uses ``key``; keep at most ``max_per_owner`` per owner."""
        with self._lock:
            if key not in self._indexes:
                return
            self._owners.setdefault(key, set()).add(owner)
            if owner is None:
                return
            mine = [k for k in self._indexes if self._owners.get(k) == {owner}]  # least recently used first
            for old in mine[: max(0, len(mine) - self.max_per_owner)]:
                self._drop(old)
                logger.info("dropped index %s: its visitor keeps at most %d", old, self.max_per_owner)

    def _drop(self, key: IndexKey) -> None:
        """Forget one index (call with the lock held)."""
        self._indexes.pop(key, None)
        self._sizes.pop(key, None)
        self._owners.pop(key, None)
        lock = self._key_locks.get(key)
        if lock is not None and not lock.locked():
            del self._key_locks[key]

    def forget_owner(self, owner: str | None) -> int:
        """Drop the indexes only ``owner``'s uploads use (the visitor left); returns how many were dropped.

        An index another visitor's upload, or a shared corpus, also uses is kept for them.
        """
        if not owner:
            return 0
        dropped: list[IndexKey] = []
        with self._lock:
            for key in [k for k, who in self._owners.items() if owner in who]:
                who = self._owners[key]
                who.discard(owner)
                if not who:
                    self._drop(key)
                    dropped.append(key)
            kept_corpora = {k.corpus_id for k in self._indexes}
        # the halves (vectors, terms) of a corpus no kept index uses any more go too
        gone_corpora = {k.corpus_id for k in dropped} - kept_corpora
        if gone_corpora:
            self.parts.drop_where(lambda k: k.corpus_id in gone_corpora)
        if dropped:
            logger.info("dropped %d index(es) of a visitor who left", len(dropped))
        return len(dropped)

    def memory_twin(self, index: SearchIndex, progress: Progress | None = None) -> SearchIndex:
        """The memory index for ``index``'s corpus and model, built from its encoded documents."""
        kwargs: dict[str, Any] = {
            "doc_top_k": index.doc_top_k,
            "query_top_k": index.query_top_k,
            "analyzer": index.analyzer,
        }
        same_vectors = self.key_for(index.corpus, index.encoder, "memory", **kwargs).vectors_id == index.key.vectors_id
        if index.documents and same_vectors:  # else the model changed since: encode again
            kwargs["encoded"] = index.encoded()
        mem, _ = self.get_or_build(index.corpus, index.encoder, "memory", progress=progress, fallback=False, **kwargs)
        return mem

    def search(
        self, index: SearchIndex, query: str, *, progress: Progress | None = None, **kwargs: Any
    ) -> tuple[SearchOutcome, SearchIndex]:
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
            out = search(mem, query, **{k: v for k, v in kwargs.items() if k != "two_phase"})  # OpenSearch's own
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
