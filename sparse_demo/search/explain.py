"""Why a document matched: per-token products of its sparse score and the shared BM25 terms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sparse_demo.index import TokenContribution
from sparse_demo.search.build import SearchIndex
from sparse_demo.search.encode import doc_text


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
            {"token": c.token, "query_weight": c.query_weight, "doc_weight": c.doc_weight, "product": c.contribution}
            for c in self.contributions
        ]


def explain(index: SearchIndex, doc_id: str, query: str) -> Explanation:
    """Per-token contributions ``q[t] * d[t]`` to ``doc_id``'s sparse score for ``query``.

    BM25 terms shared by the query and the document are listed too (for highlighting).
    With a BM25-only index the contributions are empty.

    Raises:
        KeyError: the document is not in the corpus/index.
    """
    doc = index.corpus.get(doc_id)
    if doc is None:
        raise KeyError(f"document {doc_id!r} is not in the corpus")
    text = (query or "").strip()
    qterms = set(index.query_terms(text)) if text else set()
    dterms = index.query_terms(doc_text(doc.title, doc.text))
    matched = sorted({t for t in dterms if t in qterms})
    if index.encoder is None or not text:
        return Explanation(doc_id, 0.0, [], matched)
    qvec, _ = index.query_vector(text)
    if not qvec:
        return Explanation(doc_id, 0.0, [], matched)
    exp = index.backend.explain_sparse(doc_id, qvec)  # type: ignore[attr-defined]
    return Explanation(doc_id, exp.score, list(exp.contributions), matched)
