"""Built indexes shared by a process, with an in-memory fallback when OpenSearch is down."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from sparse_demo.corpus import Corpus
from sparse_demo.search.build import IndexKey, SearchIndex, build_index, index_key
from sparse_demo.search.encode import EncodedCorpus
from sparse_demo.search.explain import Explanation, explain
from sparse_demo.search.options import DEFAULT_ANALYZER, DEFAULT_DOC_TOP_K, BackendName, StageProgress
from sparse_demo.search.query import SearchOutcome, search

logger = logging.getLogger(__name__)


class SearchSession:
    """Built indexes shared by the process, keyed by :class:`IndexKey`.

    The key holds the corpus content, the model's checkpoint fingerprint, the BM25 analyzer, the
    document pruning and the backend, so a checkpoint replaced under the same name is rebuilt.

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

    def key_for(self, corpus: Corpus, encoder: Any | None, backend: str, **kwargs: Any) -> IndexKey:
        """The key :meth:`get_or_build` uses for these arguments (``analyzer``, ``doc_top_k``: as there)."""
        opts = {**self.build_kwargs, **kwargs}
        return index_key(corpus, encoder, backend, analyzer=opts.get("analyzer", DEFAULT_ANALYZER),
                         doc_top_k=opts.get("doc_top_k", DEFAULT_DOC_TOP_K))

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

        key = self.key_for(corpus, encoder, backend, **kwargs)
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
                if other.key.vectors_id == key.vectors_id and other.documents:
                    return other.encoded()
        return None

    def memory_twin(self, index: SearchIndex, progress: StageProgress | None = None) -> SearchIndex:
        """The memory index for ``index``'s corpus and model, built from its encoded documents."""
        kwargs: dict[str, Any] = {"doc_top_k": index.doc_top_k, "query_top_k": index.query_top_k,
                                  "analyzer": index.analyzer}
        same_vectors = self.key_for(index.corpus, index.encoder, "memory", **kwargs).vectors_id == index.key.vectors_id
        if index.documents and same_vectors:  # else the model changed since: encode again
            kwargs["encoded"] = index.encoded()
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
