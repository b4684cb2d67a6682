"""Text to vectors: BM25 terms and pruned sparse vectors of documents and queries."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from sparse_demo.corpus import Corpus
from sparse_demo.encoder import Encoder, Encoding
from sparse_demo.encoder.windows import WindowCounts, WindowSettings
from sparse_demo.index import IndexDocument
from sparse_demo.progress import Progress, scaled
from sparse_demo.search.corpus_files import corpus_id
from sparse_demo.search.options import DEFAULT_ANALYZER, DEFAULT_DOC_TOP_K, DEFAULT_DOC_WINDOWS, DEFAULT_QUERY_TOP_K
from sparse_demo.search.vector_store import StoredVectors, default_store


def doc_text(title: str, text: str) -> str:
    """The text both legs see: ``title + "\\n" + text`` (just ``text`` without a title)."""
    return f"{title}\n{text}" if title else text


def _prune(encoder: Encoder, encoding: Encoding, top_k: int | None) -> tuple[dict[str, float], bool]:
    """The encoder's search vector limited to its ``top_k`` heaviest tokens (ties by token id)."""
    sv = encoder.search_sparse_vector(encoding)  # sorted by weight desc, ties by id
    n = len(sv)
    keep = n if top_k is None else min(n, top_k)
    vec = {}
    for i, w in zip(sv.token_ids[:keep].tolist(), sv.weights[:keep].tolist()):
        if w > 0:
            vec[encoder.id_to_token(int(i))] = float(w)
    return vec, keep < n


def encode_query(
    encoder: Encoder, query: str, top_k: int | None = DEFAULT_QUERY_TOP_K
) -> tuple[dict[str, float], bool]:
    """A query's search vector (the query side; special tokens dropped) pruned to ``top_k``; ``(vector, pruned)``."""
    enc = encoder.encode([query], side="query")[0]
    return _prune(encoder, enc, top_k)


@dataclass(frozen=True, eq=False)
class TokenIds:
    """Every document's input token ids, compactly: one int32 array cut by row offsets (CSR style).

    Document ``i``'s ids are ``ids[indptr[i]:indptr[i + 1]]``; indexing and iterating give those
    slices, so it reads as a sequence of id sequences. 10,000 documents of 200 tokens take 8 MB.

    Example:
        >>> t = TokenIds.from_sequences([(0, 5, 2), (0, 2)])
        >>> len(t), t[1].tolist(), t.indptr.tolist()
        (2, [0, 2], [0, 3, 5])
    """

    indptr: np.ndarray
    ids: np.ndarray

    @classmethod
    def from_sequences(cls, seqs: Sequence[Sequence[int]]) -> TokenIds:
        """Pack id sequences (one per document, in order)."""
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        indptr = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        ids = np.fromiter((i for s in seqs for i in s), dtype=np.int32, count=int(indptr[-1]))
        return cls(indptr, ids)

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"document {i} out of range for {n} documents")
        i %= n
        return self.ids[self.indptr[i] : self.indptr[i + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    @property
    def nbytes(self) -> int:
        return int(self.indptr.nbytes + self.ids.nbytes)


@dataclass(frozen=True)
class EncodedCorpus:
    """Documents ready for any backend, plus what encoding them cost.

    ``vectors_id`` (set by :func:`~sparse_demo.search.build_index`) names the corpus, model
    fingerprint, analyzer and pruning they were made with, so they are never loaded under another
    key; "" means unknown (not checked). ``input_ids`` holds each document's input token ids as the
    encoder saw them (special tokens added, truncated to its ``max_length``), so the corpus report
    need not tokenise the corpus again; None for a BM25-only corpus or an encoder whose encodings
    carry no ids.
    """

    documents: list[IndexDocument]
    pruned: int
    seconds: float
    vectors_id: str = ""
    input_ids: TokenIds | None = None
    windows: WindowCounts | None = None

    @property
    def avg_tokens(self) -> float:
        n = len(self.documents)
        return sum(len(d.sparse) for d in self.documents) / n if n else 0.0


@dataclass(frozen=True)
class DocumentVectors:
    """The sparse leg's half of an encoded corpus: every document's pruned search vector.

    What these depend on is the corpus content, the model's fingerprint and the document pruning,
    never the BM25 analyzer, so a session reuses them when only the analyzer changes.
    ``source`` (set by :func:`~sparse_demo.search.build_index`; see
    :attr:`~sparse_demo.search.IndexKey.sparse_id`) names what they were made from; "" means
    unknown (not checked).

    Attributes:
        vectors: One search vector per document, in corpus order (empty dicts without a model).
        pruned: How many vectors were cut to the document top-k.
        seconds: What encoding them took.
        input_ids: Each document's input token ids as the encoder saw them (see
            :class:`EncodedCorpus`), or None.
        source: What they were made from ("" unknown).
        windows: How many documents were longer than the model reads and how they were read (None
            without a model).
    """

    vectors: list[dict[str, float]]
    pruned: int
    seconds: float
    input_ids: TokenIds | None = None
    source: str = ""
    windows: WindowCounts | None = None
    #: Per document, its windows' pruned vectors when indexed as passages (``passages`` mode), else None.
    passages: list[tuple[dict[str, float], ...]] | None = None

    def __len__(self) -> int:
        return len(self.vectors)


@dataclass(frozen=True)
class DocumentTerms:
    """The BM25 leg's half of an encoded corpus: every document's analysed terms.

    What these depend on is the corpus content and the analyzer spec, never the model, so a
    session reuses them when only the model changes. ``source`` as in :class:`DocumentVectors`
    (:attr:`~sparse_demo.search.IndexKey.terms_id`).
    """

    terms: list[list[str]]
    seconds: float
    source: str = ""

    def __len__(self) -> int:
        return len(self.terms)


def encode_vectors(
    corpus: Corpus,
    encoder: Encoder | None,
    *,
    batch_size: int = 32,
    doc_top_k: int | None = DEFAULT_DOC_TOP_K,
    progress: Progress | None = None,
    windows: WindowSettings = DEFAULT_DOC_WINDOWS,
    disk_cache: bool = False,
) -> DocumentVectors:
    """Every document's sparse search vector (the document side; special tokens dropped), pruned to ``doc_top_k``.

    The text the model reads is ``title + "\\n" + text``, all of it: a document longer than the model's max
    length is read in windows and its vector is the max over them (``windows``; see
    :mod:`sparse_demo.encoder.windows`; ``first`` truncates), and the counts say how many were. The whole
    corpus is tokenised first (tokenizer batches) and sorted by length, so each model batch holds texts of
    similar length; every encoding is pruned as soon as its batch is done and put back in corpus order. The
    vectors equal those of encoding each text on its own. With ``encoder=None`` the vectors are
    empty (a BM25-only index) and no model runs.

    With ``disk_cache`` a shared corpus (no ``owner``: not a visitor's upload) encoded by a checkpoint as
    stored (not a model in training) is read from and written to the on-disk
    :class:`~sparse_demo.search.vector_store.VectorStore` (``SPARSE_DEMO_VECTOR_CACHE``), keyed on everything
    the vectors depend on, so a restart does not encode it again. Callers switch it on only for models that
    are not a visitor's own (the Search tab, the command line).

    Raises:
        ValueError: ``batch_size`` < 1 or ``doc_top_k`` < 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if doc_top_k is not None and doc_top_k < 1:
        raise ValueError(f"doc_top_k must be >= 1 or None, got {doc_top_k}")
    t0 = time.perf_counter()
    docs = corpus.documents
    total = len(docs)
    report = progress or (lambda _f, _d: None)
    shared = encoder is not None and corpus.owner is None and bool(getattr(encoder, "stored_checkpoint", False))
    store = default_store() if disk_cache and shared and total else None
    key = ""
    if store is not None:
        key = f"{corpus_id(corpus)}\x1f{encoder.fingerprint}\x1f{doc_top_k}\x1f{windows.key}"
        found = store.load(key, total)
        if found is not None:
            report(1.0, f"read the {total:,} document vectors from the disk cache (encoded before)")
            ids_read = TokenIds(*found.input_ids) if found.input_ids is not None else None
            return DocumentVectors(
                found.vectors,
                found.pruned,
                time.perf_counter() - t0,
                ids_read,
                windows=found.windows,
                passages=found.passages,
            )
    vectors: list[dict[str, float]] = [{} for _ in docs]
    pruned = 0
    ids: list[Sequence[int] | None] = [None] * total
    counts = None
    passages: list[tuple[dict[str, float], ...]] | None = None
    if encoder is not None:
        texts = [doc_text(d.title, d.text) for d in docs]
        counts, done = encoder.document_windows(texts, windows, batch_size=batch_size, progress=report)
        if windows.mode == "passages":
            passages = [() for _ in docs]
        for i, doc in done:
            vectors[i], cut = _prune(encoder, doc.encoding, doc_top_k)
            pruned += cut
            ids[i] = doc.encoding.input_ids
            if passages is not None:  # every document, a short one as its one passage
                passages[i] = tuple(_prune(encoder, p, doc_top_k)[0] for p in doc.passages)
    input_ids = (
        TokenIds.from_sequences(ids) if encoder is not None and total and all(x is not None for x in ids) else None
    )
    out = DocumentVectors(vectors, pruned, time.perf_counter() - t0, input_ids, windows=counts, passages=passages)
    if store is not None:
        arrays = (input_ids.indptr, input_ids.ids) if input_ids is not None else None
        store.save(key, StoredVectors(vectors, pruned, arrays, counts, passages))
    return out


def analyse_terms(
    corpus: Corpus, analyzer: str = DEFAULT_ANALYZER, *, progress: Progress | None = None
) -> DocumentTerms:
    """Every document's BM25 terms (Kiwi ``form/tag`` after the analyzer's stop tags) of ``title + "\\n" + text``.

    Raises:
        ValueError: an unknown analyzer spec.
    """
    terms_of = analyzer_terms(analyzer)
    t0 = time.perf_counter()
    docs = corpus.documents
    total = len(docs)
    report = progress or (lambda _f, _d: None)
    out: list[list[str]] = []
    for n, d in enumerate(docs, start=1):
        out.append(terms_of(doc_text(d.title, d.text)))
        # after every document: a deadline wrapped around ``progress`` must not wait for 5% of the corpus
        report(n / max(total, 1), f"analysed {n}/{total} documents (BM25 terms)")
    return DocumentTerms(out, time.perf_counter() - t0)


def assemble(corpus: Corpus, vectors: DocumentVectors, terms: DocumentTerms, vectors_id: str = "") -> EncodedCorpus:
    """The :class:`EncodedCorpus` of a corpus from its two halves (the same objects, not copies).

    Raises:
        ValueError: a half holds another number of documents than the corpus.
    """
    n = len(corpus)
    if len(vectors) != n or len(terms) != n:
        raise ValueError(
            f"the encoded halves hold {len(vectors)} vectors and {len(terms)} term lists for a corpus of {n} documents"
        )
    passages = vectors.passages or [()] * n
    docs = [
        IndexDocument(id=d.id, text=d.text, terms=t, sparse=v, title=d.title, passages=ps)
        for d, t, v, ps in zip(corpus.documents, terms.terms, vectors.vectors, passages)
    ]
    return EncodedCorpus(
        docs, vectors.pruned, vectors.seconds + terms.seconds, vectors_id, vectors.input_ids, vectors.windows
    )


def encode_corpus(
    corpus: Corpus,
    encoder: Encoder | None,
    *,
    batch_size: int = 32,
    doc_top_k: int | None = DEFAULT_DOC_TOP_K,
    progress: Progress | None = None,
    analyzer: str = DEFAULT_ANALYZER,
    windows: WindowSettings = DEFAULT_DOC_WINDOWS,
    disk_cache: bool = False,
) -> EncodedCorpus:
    """BM25 terms (:func:`analyse_terms`) and pruned sparse vectors (:func:`encode_vectors`) of every document.

    The two halves depend on different things (the analyzer; the model and pruning), which is
    why :class:`~sparse_demo.search.SearchSession` caches them apart; this function makes both.

    Args:
        corpus: The documents.
        encoder: An :class:`~sparse_demo.encoder.Encoder`, or None (BM25 terms only).
        batch_size: Texts per model call.
        doc_top_k: Tokens kept per document vector (None: all).
        progress: ``progress(fraction, description)``.
        analyzer: The BM25 analyzer spec (``"default"``, ``"all"`` or a stop-tag list).
        windows: How a document longer than the model reads is read (:func:`encode_vectors`).
        disk_cache: Read and keep the vectors on disk (:func:`encode_vectors`).

    Returns:
        The documents in corpus order, how many vectors were pruned and the seconds it took.
    """
    report = progress or (lambda _f, _d: None)
    analyzer_terms(analyzer)  # an unknown spec fails before the model runs
    base = 0.9 if encoder is not None else 0.0
    vectors = encode_vectors(
        corpus,
        encoder,
        batch_size=batch_size,
        doc_top_k=doc_top_k,
        progress=scaled(report, 0.0, base),
        windows=windows,
        disk_cache=disk_cache,
    )
    terms = analyse_terms(corpus, analyzer, progress=scaled(report, base, 1.0))
    return assemble(corpus, vectors, terms)


def analyzer_terms(spec: str = DEFAULT_ANALYZER) -> Callable[[str], list[str]]:
    """The BM25 term function of an analyzer spec (:func:`sparse_demo.korean.get_analyzer`).

    Raises:
        ValueError: an unknown spec (the message names the valid choices).
    """
    from sparse_demo.korean import get_analyzer

    return get_analyzer(spec).terms


def analyzer_spec(spec: str = DEFAULT_ANALYZER) -> str:
    """The canonical form of an analyzer spec (what indexes record and compare).

    Raises:
        ValueError: an unknown spec.
    """
    from sparse_demo.korean import get_analyzer

    return get_analyzer(spec).spec
