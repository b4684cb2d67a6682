"""Why a document matched: per-token products of its sparse score and the shared BM25 terms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sparse_demo.index import TokenContribution
from sparse_demo.search.build import SearchIndex
from sparse_demo.search.encode import doc_text


@dataclass(frozen=True)
class Explanation:
    """Why a document matched: sparse per-token products and the shared BM25 morphemes.

    For a document longer than the model reads (read in windows), ``windows`` holds each window's
    character span in ``title + "\\n" + text``, ``token_windows`` the window each matching token's weight
    came from (its max), and ``best_window`` the window that scored the document (passages mode) or the
    window holding most of the score; all empty / None for a document read in one piece.
    """

    doc_id: str
    sparse_score: float
    contributions: list[TokenContribution]
    matched_terms: list[str]
    windows: tuple[tuple[int, int], ...] = ()
    token_windows: dict[str, int] = field(default_factory=dict)
    best_window: int | None = None
    #: The engine's own per-token contributions (OpenSearch ``_explain``), None where the backend has none.
    engine: dict[str, float] | None = None

    def engine_agreement(self, tolerance: float = 1e-4) -> str | None:
        """A line comparing the engine's explanation with the contributions computed here, or None."""
        if self.engine is None:
            return None
        mine = {c.token: c.contribution for c in self.contributions}
        differ = sorted(
            t for t in set(mine) | set(self.engine) if abs(mine.get(t, 0.0) - self.engine.get(t, 0.0)) > tolerance
        )
        total = sum(self.engine.values())
        if not differ:
            return (
                f"OpenSearch's own explanation (`_explain`) agrees: the same {len(self.engine)} token products, "
                f"sum {total:.4g}."
            )
        return (
            f"OpenSearch's own explanation (`_explain`, sum {total:.4g}) differs from the contributions computed "
            f"here on {len(differ)} token(s): {', '.join(differ[:5])}."
        )

    @property
    def tokens(self) -> list[str]:
        return [c.token for c in self.contributions]

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for c in self.contributions:
            row = {
                "token": c.token,
                "query_weight": c.query_weight,
                "doc_weight": c.doc_weight,
                "product": c.contribution,
            }
            if self.windows:
                where = self.token_windows.get(c.token)
                row["window"] = where + 1 if where is not None else None
            rows.append(row)
        return rows


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
    contributions = list(exp.contributions)
    spans, token_windows, best = _windows_of(index, doc_text(doc.title, doc.text), contributions)
    engine_fn = getattr(index.backend, "engine_explain_sparse", None)
    engine = engine_fn(doc_id, qvec) if engine_fn is not None else None
    return Explanation(doc_id, exp.score, contributions, matched, spans, token_windows, best, engine)


def _windows_of(
    index: SearchIndex, text: str, contributions: list[TokenContribution]
) -> tuple[tuple[tuple[int, int], ...], dict[str, int], int | None]:
    """The windows of a long document and the window each contributing token's weight came from.

    The one document is encoded again (its windows only) to know each weight's position; a document that
    fits, or an index read with ``first``, has no windows.
    """
    if index.encoder is None or index.doc_windows.mode == "first" or not contributions:
        return (), {}, None
    _, done = index.encoder.document_windows([text], index.doc_windows)
    windowed = next(iter(done))[1]
    enc = windowed.encoding
    if not enc.windows:
        return (), {}, None
    spans = tuple(_char_span(enc, a, b) for a, b in enc.windows)
    where: dict[str, int] = {}
    position = {index.encoder.id_to_token(int(t)): int(p) for t, p in zip(enc.vector.token_ids, enc.vector.positions)}
    for c in contributions:
        pos = position.get(c.token)
        window = enc.window_of(pos) if pos is not None else None
        if window is not None:
            where[c.token] = window
    if windowed.passages:  # the passage that scored the document (the largest dot product) made every product
        weights = {c.token: c.query_weight for c in contributions}
        decode = index.encoder.id_to_token

        def dot(passage) -> float:
            vec = passage.vector
            return sum(
                weights[tok] * float(w)
                for t, w in zip(vec.token_ids.tolist(), vec.weights.tolist())
                if (tok := decode(t)) in weights
            )

        dots = [dot(p) for p in windowed.passages]
        best = max(range(len(dots)), key=lambda j: dots[j])
        where = {c.token: best for c in contributions}
    else:
        share: dict[int, float] = {}
        for c in contributions:
            if c.token in where:
                share[where[c.token]] = share.get(where[c.token], 0.0) + c.contribution
        best = max(share, key=lambda j: share[j]) if share else None
    return spans, where, best


def _char_span(enc, start: int, stop: int) -> tuple[int, int]:
    """The character span of token positions ``[start, stop)`` of an encoding (special tokens skipped)."""
    offsets = [o for o in enc.offsets[start:stop] if o[1] > o[0]]
    return (offsets[0][0], offsets[-1][1]) if offsets else (0, 0)
