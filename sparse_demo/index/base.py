"""The search-backend protocol, typed results and token/weight validation.

Every backend (in-memory, OpenSearch) indexes :class:`IndexDocument` objects and answers
two *legs*: BM25 over Kiwi morpheme terms and a sparse dot product over ``dict[str, float]``
vectors. Hybrid fusion (:mod:`sparse_demo.index.fusion`) works on the legs alone, so results
are identical whichever backend produced them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sparse_demo.progress import Progress

if TYPE_CHECKING:
    from sparse_demo.korean import BM25Analyzer

logger = logging.getLogger(__name__)


#: Between a document id and its window number in a passage id (``doc-1\x1f0``).
PASSAGE_SEP = "\x1f"

#: Smallest weight Lucene's ``FeatureField`` accepts (a normal float32).
MIN_FEATURE_WEIGHT = 1.17549435e-38


@dataclass(frozen=True)
class IndexDocument:
    """A document ready for indexing.

    Attributes:
        id: Unique document id.
        text: Body text (stored and shown, not searched directly).
        terms: BM25 terms, normally ``backend.analyzer.terms(text)`` (the backend's
            :class:`~sparse_demo.korean.BM25Analyzer`; ``korean.bm25_terms`` for the default).
        sparse: Search vector, token string -> positive weight.
        title: Optional title.
        passages: The search vectors of the document's windows when it is indexed as passages (a long
            document read one window at a time): its sparse score is then the best passage's (MaxP), and
            ``sparse`` (the max over the passages) is kept for explanations. Empty: one vector.
    """

    id: str
    text: str
    terms: Sequence[str]
    sparse: Mapping[str, float]
    title: str = ""
    passages: tuple[Mapping[str, float], ...] = ()


@dataclass(frozen=True)
class Hit:
    """One search hit: document id and score, ``rank`` is 1-based within its list."""

    id: str
    score: float
    rank: int


@dataclass(frozen=True)
class SearchResult:
    """The ranked hits of one leg (``"bm25"`` or ``"sparse"``) from one backend."""

    leg: str
    hits: list[Hit]
    took_ms: float = 0.0
    backend: str = ""

    @property
    def ids(self) -> list[str]:
        return [h.id for h in self.hits]

    def __len__(self) -> int:
        return len(self.hits)


@dataclass(frozen=True)
class TokenContribution:
    """One token's share of a sparse score: ``query_weight * doc_weight``."""

    token: str
    query_weight: float
    doc_weight: float
    contribution: float


@dataclass(frozen=True)
class SparseExplanation:
    """Per-token breakdown of a document's sparse score (sorted by contribution)."""

    doc_id: str
    score: float
    contributions: list[TokenContribution] = field(default_factory=list)


@runtime_checkable
class SearchBackend(Protocol):
    """What the app needs from a search engine.

    ``search_bm25`` takes the query's BM25 terms (with multiplicity, as Lucene's ``match``
    query counts a repeated term twice); ``search_sparse`` takes the query's search vector.
    Both return hits with score > 0 only, best first, ties broken by id. ``analyzer`` is the
    :class:`~sparse_demo.korean.BM25Analyzer` that documents' and queries' terms come from.
    """

    name: str
    analyzer: BM25Analyzer

    def add(self, docs: Iterable[IndexDocument], progress: Progress | None = None) -> int:
        """Index documents (an existing id is replaced); returns how many were added."""
        ...

    def search_bm25(self, terms: Sequence[str], k: int = 10) -> SearchResult: ...

    def search_sparse(self, qvec: Mapping[str, float], k: int = 10) -> SearchResult: ...

    def count(self) -> int: ...

    def clear(self) -> None: ...


def validate_k(k: int) -> int:
    """Check a result count ``k`` (a positive int)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return k


def validate_sparse_vector(vec: Mapping[str, float], *, what: str = "sparse vector") -> dict[str, float]:
    """Check a sparse vector: non-empty string tokens, finite positive weights.

    Weights below the smallest normal float32 are rejected too, because Lucene's
    ``FeatureField`` (``rank_features``) cannot store them.

    Raises:
        ValueError: naming the first bad token and what is allowed.
    """
    if not isinstance(vec, Mapping):
        raise ValueError(f"{what} must be a mapping token -> weight, got {type(vec).__name__}")  # noqa: TRY004 - user data: ValueError by design
    out: dict[str, float] = {}
    for token, weight in vec.items():
        if not isinstance(token, str) or token == "":
            raise ValueError(f"{what}: token names must be non-empty strings, got {token!r}")
        try:
            w = float(weight)
        except (TypeError, ValueError):
            raise ValueError(f"{what}: weight of {token!r} is not a number: {weight!r}") from None
        if not math.isfinite(w) or w <= 0.0:
            raise ValueError(
                f"{what}: weight of {token!r} must be a finite number > 0, got {weight!r} "
                "(drop zero-weight tokens before indexing or searching)"
            )
        if w < MIN_FEATURE_WEIGHT:
            raise ValueError(
                f"{what}: weight of {token!r} is {w!r}, below the smallest storable weight {MIN_FEATURE_WEIGHT!r}"
            )
        out[token] = w
    return out


def validate_document(doc: IndexDocument) -> IndexDocument:
    """Check a document's id, terms and vector; returns it unchanged."""
    if not isinstance(doc, IndexDocument):
        raise ValueError(f"expected IndexDocument, got {type(doc).__name__}")  # noqa: TRY004 - user data: ValueError by design
    if not isinstance(doc.id, str) or not doc.id:
        raise ValueError(f"document id must be a non-empty string, got {doc.id!r}")
    for term in doc.terms:
        if not isinstance(term, str) or not term or any(ch.isspace() for ch in term):
            raise ValueError(
                f"document {doc.id!r}: BM25 terms must be non-empty strings without whitespace, got {term!r}"
            )
    validate_sparse_vector(doc.sparse, what=f"document {doc.id!r}")
    for j, passage in enumerate(doc.passages):
        validate_sparse_vector(passage, what=f"document {doc.id!r}, passage {j}")
    return doc
