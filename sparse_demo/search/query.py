"""Index to hits: :func:`search` over one index, with typed hits and outcomes."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sparse_demo.corpus import Corpus
from sparse_demo.index import DEFAULT_CANDIDATES, SearchResult, fuse
from sparse_demo.index.base import Hit
from sparse_demo.limits import Limits
from sparse_demo.search.build import IndexKey, SearchIndex
from sparse_demo.search.options import FUSIONS, METHODS, FusionName, SearchMethod, choice

LongQuery = Literal["cut", "refuse"]
#: What :func:`search` may do with a query longer than its limit.
LONG_QUERY_POLICIES: tuple[str, ...] = ("cut", "refuse")
FusionSide = Literal["auto", "client", "server"]
FUSION_SIDES: tuple[str, ...] = ("auto", "client", "server")


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
    #: Hybrid only: who fused the legs: ``"client"`` (here, :func:`sparse_demo.index.fuse`) or
    #: ``"server: <search pipeline>"`` (OpenSearch's neural-search ``hybrid`` query).
    fused_by: str | None = None

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


def _limit_query(text: str, max_chars: int | None, policy: str) -> tuple[str, str]:
    """``(query to search, note)``: the query cut to ``max_chars`` (with a note) or refused."""
    choice(policy, LONG_QUERY_POLICIES, "long_query policy")
    limit = Limits().max_query_chars if max_chars is None else max_chars
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"max_query_chars must be a positive integer, got {max_chars!r}")
    if len(text) <= limit:
        return text, ""
    if policy == "refuse":
        raise ValueError(f"the query has {len(text):,} characters; the limit is {limit:,}. Shorten it.")
    kept = text[:limit].rstrip()
    return kept, (
        f"The query had {len(text):,} characters; only its first {limit:,} were searched (the limit is {limit:,})."
    )


def search(
    index: SearchIndex,
    query: str,
    method: SearchMethod = "hybrid",
    k: int = 10,
    fusion: FusionName = "minmax",
    weight: float = 0.5,
    candidates: int | None = None,
    *,
    max_query_chars: int | None = None,
    long_query: LongQuery = "cut",
    fusion_side: FusionSide = "auto",
    two_phase: Any = None,
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
        max_query_chars: The longest query searched (default ``Limits().max_query_chars``).
        long_query: What to do with a longer query: ``"cut"`` it to ``max_query_chars``
            characters (the outcome's notes say so) or ``"refuse"`` it (ValueError).
        fusion_side: Hybrid only: ``"server"`` fuses on the cluster (OpenSearch with the neural-search
            plugin: a ``hybrid`` query through a search pipeline), ``"client"`` here, ``"auto"`` on the
            cluster where it can. The legs are always fetched too (their evidence fills the table), and
            a server fusion that ranks differently from the client's on the same legs is noted.
        two_phase: OpenSearch with the neural-search plugin only: a
            :class:`~sparse_demo.index.opensearch.TwoPhase` to run the sparse leg in two phases.

    Returns:
        SearchOutcome; hybrid scores are the min-max (or RRF) fusion of the two legs.

    Raises:
        ValueError: bad options or query; OpenSearchUnavailable: the node went away.
    """
    choice(method, METHODS, "method")
    choice(fusion, FUSIONS, "fusion")
    choice(fusion_side, FUSION_SIDES, "fusion_side")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    w = _validate_weight(weight)
    text = (query or "").strip()
    if not text:
        raise ValueError("the query is empty; type a question or keywords")
    text, cut_note = _limit_query(text, max_query_chars, long_query)

    n_cand = max(k, DEFAULT_CANDIDATES) if candidates is None else int(candidates)
    if n_cand < k:
        raise ValueError(f"candidates must be >= k ({k}), got {candidates}")
    t_start = time.perf_counter()
    notes: list[str] = [cut_note] if cut_note else []
    terms: list[str] = index.query_terms(text) if method in ("bm25", "hybrid") else []
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
    if two_phase is not None and method != "bm25":
        if not getattr(be, "supports_server_hybrid", lambda: False)():
            raise ValueError("two-phase sparse search needs OpenSearch with the neural-search plugin")
        notes.append(
            f"Two-phase sparse search (neural-search): tokens under {two_phase.prune_ratio:g} × the query's "
            f"largest weight only rescore the top {two_phase.expansion_rate:g} × k hits "
            f"(at most {two_phase.max_window_size:,})."
        )
    phase = {"two_phase": two_phase} if two_phase is not None else {}
    if method in ("sparse", "hybrid"):
        legs["sparse"] = be.search_sparse(qvec, fetch, **phase) if qvec else SearchResult("sparse", [], 0.0, be.name)
    rows: list[tuple[str, float, float | None, int | None, float | None, int | None]] = []
    fused_by = None
    if method == "hybrid":
        weights = (1.0 - w, w) if fusion == "minmax" else None
        fused = fuse([legs["bm25"], legs["sparse"]], method=fusion, weights=weights, k=k)
        server = getattr(be, "supports_server_hybrid", None)
        on_server = fusion_side == "server" or (fusion_side == "auto" and server is not None and server())
        if fusion_side == "server" and (server is None or not server()):
            raise ValueError(f"the {be.name} backend cannot fuse on the server: use fusion_side='client'")
        if on_server and (terms or qvec):
            result, pipeline = be.search_hybrid(
                terms, qvec, k, fusion=fusion, weights=weights, candidates=fetch, **phase
            )
            legs["hybrid"] = result
            fused_by = f"server: {pipeline}"
            if [h.id for h in result.hits] != [h.id for h in fused.hits]:
                notes.append(
                    "OpenSearch's fusion ranks differently from the client's on the same legs "
                    "(tied leg scores are ranked in index order there, by id here)."
                )
            leg_hits = [{h.id: h for h in leg.hits} for leg in (legs["bm25"], legs["sparse"])]
            for h in result.hits:
                b, sp = leg_hits[0].get(h.id), leg_hits[1].get(h.id)
                rows.append(
                    (
                        h.id,
                        h.score,
                        b.score if b else None,
                        b.rank if b else None,
                        sp.score if sp else None,
                        sp.rank if sp else None,
                    )
                )
        else:
            fused_by = "client"
            for h in fused.hits:
                rows.append((h.id, h.score, h.leg_scores[0], h.leg_ranks[0], h.leg_scores[1], h.leg_ranks[1]))
    else:
        for h in _ranked(legs[method].hits)[:k]:
            if method == "bm25":
                rows.append((h.id, h.score, h.score, h.rank, None, None))
            else:
                rows.append((h.id, h.score, None, None, h.score, h.rank))
    search_ms = (time.perf_counter() - t_search) * 1000
    health_note = getattr(be, "health_note", None)
    if health_note is not None and (note := health_note()):
        notes.append(note)
    qid = gold_query(index.corpus, text)
    judged = index.corpus.qrels.get(qid, {}) if qid else {}
    hits = []
    for rank, (doc_id, score, bs, br, ss, sr) in enumerate(rows, start=1):
        doc = index.corpus.get(doc_id)
        hits.append(
            SearchHit(
                rank,
                doc_id,
                doc.title if doc else "",
                doc.text if doc else "",
                float(score),
                bs,
                br,
                ss,
                sr,
                judged.get(doc_id, 0) if qid else None,
            )
        )
    total_ms = (time.perf_counter() - t_start) * 1000
    return SearchOutcome(
        query=text,
        method=method,
        fusion=fusion if method == "hybrid" else None,
        weight=w if method == "hybrid" and fusion == "minmax" else None,
        k=k,
        hits=hits,
        legs=legs,
        backend=be.name,
        key=index.key,
        query_terms=terms,
        query_vector=qvec,
        encode_ms=encode_ms,
        search_ms=search_ms,
        total_ms=total_ms,
        gold_query_id=qid,
        gold_total=sum(1 for v in judged.values() if v > 0),
        notes=tuple(notes),
        fused_by=fused_by,
    )


def _ranked(hits: Sequence[Hit]) -> list[Hit]:
    """Hits best first, ties by id, with 1-based ranks (backends already do this; be sure)."""
    ordered = sorted(hits, key=lambda h: (-h.score, h.id))
    return [Hit(h.id, h.score, r) for r, h in enumerate(ordered, start=1)]


#: How the results table, the highlighted passage and the status line mark a judged relevant hit.
GOLD_MARK = "✓"


def frame_rows(hits: Sequence[SearchHit]) -> list[dict[str, Any]]:
    """Hits as table rows (for pandas / CSV)."""
    return [
        {
            "rank": h.rank,
            "gold": GOLD_MARK if h.gold else ("" if h.relevance is None else "·"),
            "id": h.id,
            "title": h.title,
            "score": round(h.score, 6),
            "bm25_score": None if h.bm25_score is None else round(h.bm25_score, 4),
            "bm25_rank": h.bm25_rank,
            "sparse_score": None if h.sparse_score is None else round(h.sparse_score, 4),
            "sparse_rank": h.sparse_rank,
        }
        for h in hits
    ]


def as_mapping(vec: Mapping[str, float], top: int = 10) -> str:
    """The heaviest ``top`` tokens of a vector as ``token:weight`` text (for status lines)."""
    items = sorted(vec.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return ", ".join(f"{t} {w:.2f}" for t, w in items)
