"""From an index (or encoded documents) and its encoder to a :class:`CorpusReport`, cached.

The report reads the document vectors the index holds (``SearchIndex.documents``: token
string -> weight, after the ``doc_top_k`` cap), maps token strings to vocabulary ids, takes
each document's input token ids from the index (``SearchIndex.input_ids``, kept by encoding;
only where the index lacks them, from the encoder's tokenizer on ``title + "\\n" + text``,
truncated to the encoder's ``max_length``, as encoding did) and the token categories from
:class:`sparse_demo.analysis.Analyzer`. Query vectors for the FLOPS figures are the index's
own (pruned to ``query_top_k``).

Reports are cached per (model fingerprint, corpus fingerprint, cap, stopword rule, queries)
in a small process-wide LRU: the second request for the same model and corpus is free.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sparse_demo.analysis import CATEGORIES, Analyzer, input_token_categories
from sparse_demo.compare import token_key
from sparse_demo.encoder import Encoder
from sparse_demo.korean import StopwordRule, morphemes, strip_marker
from sparse_demo.search import corpus_fingerprint, encode_corpus, model_fingerprint

from .core import CollapseThresholds, CorpusReport, corpus_report, input_matrix

if TYPE_CHECKING:
    from sparse_demo.search import SearchIndex

logger = logging.getLogger(__name__)

#: Queries used for the FLOPS figures at most (the corpus's first ones).
MAX_REPORT_QUERIES = 500
_VOCAB_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_KEYS_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def vocabulary(encoder: Encoder) -> tuple[np.ndarray, pd.Index | dict[str, int], np.ndarray]:
    """``(tokens by id, token -> id lookup, readable tokens by id)``, cached per encoder.

    The lookup is a ``pd.Index`` of the tokens (a dict when two ids share a string); the
    arrays are numpy object arrays (marker-stripped readable forms in the third).
    """
    try:
        return _VOCAB_CACHE[encoder]
    except (KeyError, TypeError):
        pass
    size = int(encoder.vocab_size)
    tokens = [encoder.id_to_token(i) for i in range(size)]
    index = pd.Index(tokens)
    ids: pd.Index | dict[str, int] = index if index.is_unique else {t: i for i, t in enumerate(tokens)}
    entry = (np.asarray(tokens, dtype=object), ids, np.asarray([strip_marker(t) or t for t in tokens], dtype=object))
    with contextlib.suppress(TypeError):  # not weak-referenceable: no caching
        _VOCAB_CACHE[encoder] = entry
    return entry


def vectors_matrix(
    vectors: Sequence[Mapping[str, float]], ids: Mapping[str, int] | pd.Index, vocab_size: int
) -> sp.csr_matrix:
    """``[len(vectors), vocab_size]`` CSR matrix of ``{token string: weight}`` vectors.

    Args:
        vectors: the vectors.
        ids: token string -> vocabulary id (a mapping, or a ``pd.Index`` of the tokens by id,
            which maps millions of strings in C).
        vocab_size: columns.

    Raises:
        ValueError: a token is not in the vocabulary (the vectors come from another model).
    """
    lengths = np.fromiter((len(v) for v in vectors), dtype=np.int64, count=len(vectors))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    total = int(indptr[-1])
    keys = list(chain.from_iterable(v.keys() for v in vectors))
    vals = np.fromiter(chain.from_iterable(v.values() for v in vectors), dtype=np.float64, count=total)
    if isinstance(ids, pd.Index):
        cols = ids.get_indexer(keys) if total else np.zeros(0, dtype=np.int64)
    else:
        cols = np.fromiter((ids.get(k, -1) for k in keys), dtype=np.int64, count=total)
    if total and cols.min() < 0:
        bad = keys[int(np.flatnonzero(cols < 0)[0])]
        raise ValueError(f"token {bad!r} is not in the encoder's vocabulary; the vectors come from another model")
    m = sp.csr_matrix((vals, cols, indptr), shape=(len(vectors), vocab_size))
    m.sum_duplicates()
    return m


def category_codes(encoder: Encoder, active_ids: np.ndarray, rule: StopwordRule | None = None) -> np.ndarray:
    """Category codes for every vocabulary id (only ``active_ids`` are classified; others 0)."""
    codes = np.zeros(int(encoder.vocab_size), dtype=np.uint8)
    if active_ids.size:
        codes[active_ids] = Analyzer(encoder, rule).categories(active_ids.astype(np.int64))
    return codes


def context_stopword_mass(
    encoder: Encoder,
    weights: sp.csr_matrix,
    texts: Sequence[str],
    codes: np.ndarray,
    rule: StopwordRule | None = None,
    batch_size: int = 256,
) -> float:
    """The stopword mass of document vectors with stopwords judged in context, as Explore judges a query.

    Each document's own input tokens (the tokenizer's pieces of its text, up to the encoder's ``max_length``)
    take the category of the Kiwi morpheme they came from (:func:`sparse_demo.analysis.input_token_categories`);
    every other active token (an expansion), and special and whitespace tokens, keep their vocabulary-level
    category ``codes``. Runs Kiwi once per document (about 8 ms for 200 characters on a 2-core machine).

    Args:
        encoder: the model that made the vectors (its tokenizer gives the pieces and their offsets).
        weights: ``[documents, vocabulary]`` CSR matrix of the vectors, rows in ``texts`` order.
        texts: the encoded texts.
        codes: vocabulary-level category code per vocabulary id.
        rule: the stopword rule.
    """
    rule = rule or StopwordRule()
    w = sp.csr_matrix(weights)
    stop, keep = CATEGORIES.index("stopword"), {CATEGORIES.index("special"), CATEGORIES.index("whitespace")}
    total = 0.0
    max_length = int(encoder.max_length)
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start : start + batch_size])
        enc = encoder.tokenizer(
            batch, truncation=True, max_length=max_length, return_offsets_mapping=True, verbose=False
        )
        for j, text in enumerate(batch):
            d = start + j
            cols = w.indices[w.indptr[d] : w.indptr[d + 1]]
            data = w.data[w.indptr[d] : w.indptr[d + 1]]
            is_stop = codes[cols] == stop
            found = input_token_categories(enc["input_ids"][j], enc["offset_mapping"][j], morphemes(text), rule)
            for tid, cat in found.items():
                hit = np.flatnonzero(cols == tid)
                if hit.size and int(codes[tid]) not in keep:
                    is_stop[hit] = cat == "stopword"
            total += float(data[is_stop].sum())
    return total


def input_ids_of(encoder: Encoder, texts: Sequence[str], batch_size: int = 256) -> list[list[int]]:
    """Each text's input token ids as encoding saw them (special tokens added, ``max_length`` cut)."""
    out: list[list[int]] = []
    max_length = int(encoder.max_length)
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start : start + batch_size])
        enc = encoder.tokenizer(batch, add_special_tokens=True, truncation=True, max_length=max_length, verbose=False)
        out.extend(list(ids) for ids in enc["input_ids"])
    return out


def _inputs_matrix(input_ids: Any, vocab_size: int) -> sp.csr_matrix:
    """:func:`~.core.input_matrix`, straight from the arrays when ``input_ids`` is packed (``indptr`` + ``ids``)."""
    indptr = getattr(input_ids, "indptr", None)
    flat = getattr(input_ids, "ids", None)
    if not isinstance(indptr, np.ndarray) or not isinstance(flat, np.ndarray):
        return input_matrix(input_ids, vocab_size)
    cols = flat.astype(np.int64, copy=False)
    if cols.size and (cols.min() < 0 or cols.max() >= vocab_size):
        raise ValueError(f"input token ids must lie in [0, {vocab_size}); got {cols.min()}..{cols.max()}")
    m = sp.csr_matrix(
        (np.ones(cols.size, dtype=bool), cols, indptr.astype(np.int64, copy=False)), shape=(len(indptr) - 1, vocab_size)
    )
    m.sum_duplicates()
    return m


def keys_for(encoder: Encoder, codes: np.ndarray, active_ids: np.ndarray) -> np.ndarray:
    """Surface keys (``sparse_demo.compare.token_key``) per column, computed once per id and encoder."""
    tokens, _, _ = vocabulary(encoder)
    keys = _KEYS_CACHE.get(encoder) if _weakrefable(encoder) else None
    if keys is None:
        keys = np.full(len(tokens), None, dtype=object)
        if _weakrefable(encoder):
            _KEYS_CACHE[encoder] = keys
    todo = active_ids[np.equal(keys[active_ids], None)]
    for i in todo.tolist():
        keys[i] = token_key(tokens[i], CATEGORIES[int(codes[i])])
    return keys


def _weakrefable(obj: Any) -> bool:
    try:
        weakref.ref(obj)
    except TypeError:
        return False
    return True


def report_from_vectors(
    encoder: Encoder,
    vectors: Sequence[Mapping[str, float]],
    texts: Sequence[str] | None = None,
    *,
    input_ids: Sequence[Sequence[int]] | None = None,
    query_vectors: Sequence[Mapping[str, float]] = (),
    doc_top_k: int | None = None,
    capped_documents: int | None = None,
    rule: StopwordRule | None = None,
    thresholds: CollapseThresholds | None = None,
    corpus_name: str = "",
    notes: Sequence[str] = (),
) -> CorpusReport:
    """A report over ``{token: weight}`` document vectors made by ``encoder``.

    Args:
        encoder: the model that made the vectors (vocabulary, tokenizer, special tokens).
        vectors: the document vectors as the index holds them.
        texts: the encoded texts (``title + "\\n" + text``) for the expansion figures; None
            leaves them empty.
        input_ids: the documents' input token ids, when the encoding kept them (skips
            tokenising ``texts`` again): a sequence of id sequences, or a packed
            :class:`sparse_demo.search.encode.TokenIds` (read without copying per document).
        query_vectors: query vectors for the FLOPS figures.
        doc_top_k: the cap the vectors were cut at.
        capped_documents: documents the cap cut, when known.
        rule: the stopword rule (bundled list + Kiwi POS rule when None).
        thresholds: collapse thresholds.
        corpus_name: display name.
        notes: extra notes.
    """
    tokens, ids, display = vocabulary(encoder)
    vocab = len(tokens)
    w = vectors_matrix(vectors, ids, vocab)
    q = vectors_matrix(query_vectors, ids, vocab) if query_vectors else None
    used = np.bincount(w.indices, minlength=vocab) + (np.bincount(q.indices, minlength=vocab) if q is not None else 0)
    active = np.flatnonzero(used)
    codes = category_codes(encoder, active, rule)
    if input_ids is None and texts is not None:
        input_ids = input_ids_of(encoder, texts)
    inputs = _inputs_matrix(input_ids, vocab) if input_ids is not None else None
    all_notes = list(notes)
    if encoder.drop_special:
        all_notes.append(
            "Special tokens are dropped from the search vectors, so their mass here is 0; the Explore "
            "tab shows it per text."
        )
    context_mass = context_stopword_mass(encoder, w, texts, codes, rule) if texts is not None else None
    return corpus_report(
        w,
        tokens,
        codes,
        context_stopword_mass=context_mass,
        inputs=inputs,
        queries=q,
        doc_top_k=doc_top_k,
        capped_documents=capped_documents,
        thresholds=thresholds,
        model=str(encoder.name),
        corpus=corpus_name,
        notes=all_notes,
        keys=keys_for(encoder, codes, active),
        display=display,
    )


def _doc_text(title: str, text: str) -> str:
    return f"{title}\n{text}" if title else text


def report_for_index(
    index: SearchIndex,
    *,
    rule: StopwordRule | None = None,
    queries: Sequence[str] | None = None,
    thresholds: CollapseThresholds | None = None,
    cache: ReportCache | None = None,
) -> CorpusReport:
    """The report of a built :class:`~sparse_demo.search.SearchIndex` (cached).

    Args:
        index: an index built with a model.
        rule: the stopword rule.
        queries: query texts for the FLOPS figures; None takes the corpus's own (up to
            :data:`MAX_REPORT_QUERIES`).
        thresholds: collapse thresholds.
        cache: the cache to use (the process-wide one when None).

    Raises:
        ValueError: the index was built without a model.
    """
    if index.encoder is None:
        raise ValueError(
            "this index was built without a model (BM25 only); pick a model and build the index "
            "to see its corpus report"
        )
    texts = list(queries) if queries is not None else [q.text for q in index.corpus.queries]
    dropped = max(0, len(texts) - MAX_REPORT_QUERIES)
    texts = texts[:MAX_REPORT_QUERIES]
    key = (
        model_fingerprint(index.encoder),
        corpus_fingerprint(index.corpus),
        index.doc_top_k,
        index.query_top_k,
        index.key.doc_windows,
        _rule_key(rule),
        hashlib.sha256("\x1e".join(texts).encode()).hexdigest()[:16],
        thresholds,
    )

    def build() -> CorpusReport:
        docs = index.documents
        capped = None
        input_ids = index.input_ids
        windows = index.stats.windows
        if docs is None:  # an existing OpenSearch index was reused: encode once more, here
            enc = encode_corpus(index.corpus, index.encoder, doc_top_k=index.doc_top_k, windows=index.doc_windows)
            docs, capped, input_ids, windows = enc.documents, enc.pruned, enc.input_ids, enc.windows
        else:
            capped = index.stats.pruned_docs
        if input_ids is not None and len(input_ids) != len(docs):
            logger.warning("ignoring %d input id rows for %d documents", len(input_ids), len(docs))
            input_ids = None
        notes = [f"FLOPS over the first {MAX_REPORT_QUERIES} of {len(texts) + dropped} queries."] if dropped else []
        if windows is not None and windows.sentence():
            notes.append(windows.sentence())
        return report_from_vectors(
            index.encoder,
            [d.sparse for d in docs],
            [_doc_text(d.title, d.text) for d in docs],
            input_ids=input_ids,
            query_vectors=[index.query_vector(t)[0] for t in texts if t.strip()],
            doc_top_k=index.doc_top_k,
            capped_documents=capped,
            rule=rule,
            thresholds=thresholds,
            corpus_name=index.corpus.name,
            notes=notes,
        )

    return (cache if cache is not None else DEFAULT_CACHE).get_or_build(key, build)


def _rule_key(rule: StopwordRule | None) -> tuple:
    if rule is None:
        return ("default",)
    return (hashlib.sha256("\n".join(sorted(rule.words)).encode()).hexdigest()[:16], rule.use_pos_rule)


class ReportCache:
    """A small thread-safe LRU of reports; one build per key even under concurrent requests.

    Args:
        max_reports: reports kept (least recently used dropped).
    """

    def __init__(self, max_reports: int = 16) -> None:
        if max_reports < 1:
            raise ValueError(f"max_reports must be >= 1, got {max_reports}")
        self.max_reports = max_reports
        self._items: OrderedDict[tuple, CorpusReport] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[tuple, threading.Lock] = {}
        self.builds = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: tuple) -> CorpusReport | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def get_or_build(self, key: tuple, build: Callable[[], CorpusReport]) -> CorpusReport:
        """The cached report for ``key``, built by ``build()`` when missing."""
        hit = self.get(key)
        if hit is not None:
            return hit
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            hit = self.get(key)
            if hit is not None:
                return hit
            report = build()
            with self._lock:
                self.builds += 1
                self._items[key] = report
                while len(self._items) > self.max_reports:
                    self._items.popitem(last=False)
                self._key_locks.pop(key, None)
            return report


#: The process-wide cache (reports are read-only, so visitors share them).
DEFAULT_CACHE = ReportCache()
