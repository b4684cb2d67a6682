"""A model's vectors under OpenSearch 3.3+'s ``sparse_vector`` field, for the CLI and the Search tab.

Encodes a corpus's documents (read whole, max over windows, as the index reads them) and its queries with
the model's search vectors, then measures what the engine's id folding and byte quantization do to them
(:func:`sparse_demo.index.sparse_vector_compat.compatibility_report`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sparse_demo.index.sparse_vector_compat import MODULUS, CompatibilityReport, compatibility_report
from sparse_demo.progress import Progress, scaled
from sparse_demo.search.encode import doc_text
from sparse_demo.search.options import DEFAULT_DOC_TOP_K, DEFAULT_DOC_WINDOWS, DEFAULT_QUERY_TOP_K


def search_vectors(encoder: Any, encodings: Sequence[Any], top_k: int) -> list[Any]:
    """Each encoding's search vector (special tokens dropped) cut to its ``top_k`` heaviest positive tokens."""
    from sparse_demo.encoder import SparseVector

    out = []
    for enc in encodings:
        sv = encoder.search_sparse_vector(enc)  # sorted by weight, descending
        keep = slice(0, min(len(sv), top_k))
        ids, ws, pos = sv.token_ids[keep], sv.weights[keep], sv.positions[keep]
        positive = ws > 0
        out.append(SparseVector(ids[positive], ws[positive], pos[positive]))
    return out


def document_vectors(
    encoder: Any,
    corpus: Any,
    doc_top_k: int = DEFAULT_DOC_TOP_K,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> list[Any]:
    """Document-side search vectors of every document, read whole as the index reads them (max over windows)."""
    texts = [doc_text(d.title, d.text) for d in corpus.documents]
    _counts, done = encoder.document_windows(texts, DEFAULT_DOC_WINDOWS, batch_size=batch_size, progress=progress)
    encodings: list[Any] = [None] * len(texts)
    for i, doc in done:
        encodings[i] = doc.encoding
    return search_vectors(encoder, encodings, doc_top_k)


def model_vectors(
    encoder: Any,
    corpus: Any,
    query_texts: Sequence[str] | None = None,
    *,
    doc_top_k: int = DEFAULT_DOC_TOP_K,
    query_top_k: int = DEFAULT_QUERY_TOP_K,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> tuple[list[Any], list[Any]]:
    """``(documents, queries)``: the search vectors the report measures (queries: the corpus's own by default).

    ``progress`` is called while encoding (a :class:`~sparse_demo.limits.Deadline` wrapping it stops the work).

    Raises:
        ValueError: the corpus has no documents (or the deadline passed: ``TimeLimitExceeded``).
    """
    if not corpus.documents:
        raise ValueError(f"{corpus.name}: no documents to report on")
    texts = [q.text for q in corpus.queries] if query_texts is None else list(query_texts)
    texts = [t for t in (s.strip() for s in texts) if t]
    docs = document_vectors(encoder, corpus, doc_top_k, batch_size, scaled(progress, 0.0, 0.9))
    encoded = encoder.encode_query(texts, batch_size=batch_size, progress=scaled(progress, 0.9, 1.0)) if texts else []
    queries = search_vectors(encoder, encoded, query_top_k) if texts else []
    return docs, queries


def model_report(
    encoder: Any,
    corpus: Any,
    query_texts: Sequence[str] | None = None,
    *,
    k: int = 10,
    doc_top_k: int = DEFAULT_DOC_TOP_K,
    query_top_k: int = DEFAULT_QUERY_TOP_K,
    modulus: int = MODULUS,
    batch_size: int = 32,
) -> CompatibilityReport:
    """The ``sparse_vector`` compatibility report of ``encoder`` on ``corpus`` (queries: the corpus's own by default).

    Raises:
        ValueError: the corpus has no documents.
    """
    docs, queries = model_vectors(
        encoder, corpus, query_texts, doc_top_k=doc_top_k, query_top_k=query_top_k, batch_size=batch_size
    )
    return compatibility_report(docs, queries or None, int(encoder.vocab_size), k, modulus=modulus)
