"""The corpus report itself: a pure function over document vectors, input tokens and categories.

Everything here is computed from the document vectors **the index holds**, i.e. after the
document top-k cap (``doc_top_k``, default 512) and with special tokens dropped when the
encoder drops them for search. Definitions (``N`` documents, ``w[d, v]`` the weight of
vocabulary dimension ``v`` in document ``d``, ``A[d, v] = w[d, v] > 0``):

- ``df(v) = sum_d A[d, v]`` (document frequency), ``df_share = df / N``;
  ``mass(v) = sum_d w[d, v]``; ``mean_weight(v) = mass / df`` (mean where active);
  ``max_weight(v) = max_d w[d, v]``; ``mass_share = mass / sum_v mass``.
- ``expansion_df(v)``: documents where ``v`` is active but is not one of the document's own
  input subwords (the tokenizer's ids for ``title + "\\n" + text``); ``expansion_share =
  expansion_df / df``.
- ``stopword_mass_ratio`` / ``special_mass_ratio`` / ``punctuation_mass_ratio``: the corpus's
  mass on those categories over its whole mass (a mass-weighted mean over documents);
  ``mean_doc_stopword_mass_ratio`` is the plain mean of the per-document ratios (empty
  documents left out). These judge a token by its vocabulary entry alone
  (:meth:`sparse_demo.analysis.Analyzer.categories`: the card's notion).
- ``context_stopword_mass_ratio``: the same mass share with stopwords judged in context, as the
  Explore tab does (:func:`sparse_demo.analysis.in_context_categories`: a document's own input
  tokens take the category of the Kiwi morpheme they came from, expansions keep their entry's);
  None when the documents' texts were not given.
- ``stopword_top5_share``: share of non-empty documents with a stopword among their 5
  heaviest tokens (ties by token id, as the encoder orders them).
- ``always_on`` tokens: ``df > N / 2``; ``always_on_mass_ratio``: their share of the mass.
- ``posting_entries = sum_v df(v)``; ``memory_index_bytes``: the postings as the in-memory
  backend keeps them and reports them (:func:`sparse_demo.index.bm25.csc_nbytes` of the float32
  documents x active-tokens CSC matrix: weights, row indices, one pointer per token and one more).
- ``flops_per_pair = sum_v p_q(v) * p_d(v)`` with ``p_d = df / N`` and ``p_q`` the share of
  queries activating ``v`` (the SPLADE papers' expected multiplications per query-document
  pair); ``postings_per_query = N * flops_per_pair``: posting entries one query reads on
  average.

Collapse warning (:class:`CollapseCheck`): most documents empty (collapsed to zero), more
than a few thousand active dimensions per document, most documents cut at the top-k cap
(saturated: the model switches on more than the index keeps), or always-on tokens carrying
most of the mass (the vectors no longer depend on the text).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sparse_demo.analysis import CATEGORIES
from sparse_demo.index.bm25 import csc_nbytes
from sparse_demo.korean import strip_marker

logger = logging.getLogger(__name__)

CollapseKind = Literal["ok", "empty", "dense", "capped", "always_on"]

#: Columns of :attr:`CorpusReport.tokens`, in order.
TOKEN_COLUMNS: tuple[str, ...] = (
    "token",
    "raw",
    "id",
    "category",
    "df",
    "df_share",
    "mean_weight",
    "max_weight",
    "mass",
    "mass_share",
    "expansion_df",
    "expansion_share",
)
#: Sort orders of the per-token table.
TOKEN_SORTS: tuple[str, ...] = ("df", "mass", "mean_weight", "max_weight", "expansion_df")
_STOP, _SPECIAL, _PUNCT = (CATEGORIES.index(c) for c in ("stopword", "special", "punctuation"))
_TOP_SLOTS = 5
_HIST_BINS = 30


@dataclass(frozen=True)
class CollapseThresholds:
    """When the report warns that the vectors have collapsed.

    Attributes:
        empty_share: warn when more than this share of documents has no active dimension.
        dense_dims: warn when documents average more active dimensions than this.
        capped_share: warn when more than this share of documents was cut at the top-k cap.
        always_on_mass: warn when tokens active in more than half the documents carry more
            than this share of the mass (only from ``min_documents`` documents on: in a
            handful of documents every shared token is "always on").
    """

    empty_share: float = 0.5
    dense_dims: float = 2000.0
    capped_share: float = 0.5
    always_on_mass: float = 0.5
    min_documents: int = 20

    def __post_init__(self) -> None:
        for name in ("empty_share", "capped_share", "always_on_mass"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.dense_dims <= 0:
            raise ValueError(f"dense_dims must be > 0, got {self.dense_dims}")


@dataclass(frozen=True)
class CollapseCheck:
    """The collapse verdict: ``collapsed`` with its ``kinds`` and readable ``reasons``."""

    collapsed: bool
    kinds: tuple[CollapseKind, ...] = ()
    reasons: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """One line for a page or a terminal ('' when the vectors look healthy)."""
        return "Collapse warning: " + "; ".join(self.reasons) + "." if self.collapsed else ""


@dataclass(frozen=True)
class HistogramBin:
    """Documents whose active-dimension count lies in ``[lo, hi)`` (the last bin includes ``hi``)."""

    lo: int
    hi: int
    documents: int


@dataclass(frozen=True)
class ReportTotals:
    """The headline figures of one report (see the module docstring for definitions)."""

    documents: int
    empty_documents: int
    mean_active_dims: float
    median_active_dims: float
    max_active_dims: int
    capped_documents: int
    doc_top_k: int | None
    distinct_tokens: int
    total_mass: float
    stopword_mass_ratio: float
    special_mass_ratio: float
    punctuation_mass_ratio: float
    mean_doc_stopword_mass_ratio: float
    stopword_top5_share: float
    expansion_mass_ratio: float
    always_on_tokens: int
    always_on_mass_ratio: float
    posting_entries: int
    memory_index_bytes: int
    queries: int
    flops_per_pair: float | None
    postings_per_query: float | None
    context_stopword_mass_ratio: float | None = None

    @property
    def empty_share(self) -> float:
        return self.empty_documents / self.documents if self.documents else 0.0


@dataclass(frozen=True)
class CorpusReport:
    """What a model does to a whole corpus.

    Attributes:
        totals: the headline figures.
        tokens: one row per active token (:data:`TOKEN_COLUMNS`), by descending ``df`` then
            ``mass``.
        histogram: active dimensions per document.
        collapse: the collapse verdict.
        model: the model's display name; ``corpus``: the corpus's name.
        seconds: time the report took (not counting encoding).
        notes: what the reader must know (the cap, dropped special tokens, ...).
    """

    totals: ReportTotals
    tokens: pd.DataFrame
    histogram: tuple[HistogramBin, ...]
    collapse: CollapseCheck
    model: str = ""
    corpus: str = ""
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    active_dims: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    surfaces: pd.DataFrame | None = field(default=None, repr=False)

    def top_tokens(self, n: int = 50, by: str = "df") -> pd.DataFrame:
        """The ``n`` tokens with the largest ``by`` (one of :data:`TOKEN_SORTS`)."""
        if by not in TOKEN_SORTS:
            raise ValueError(f"unknown sort {by!r}; choose one of {', '.join(TOKEN_SORTS)}")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        return self.tokens.sort_values([by, "id"], ascending=[False, True], kind="stable").head(n)

    def always_on(self) -> pd.DataFrame:
        """Tokens active in more than half of the documents, by descending ``df``."""
        n = self.totals.documents
        return self.tokens[self.tokens["df"] * 2 > n] if n else self.tokens.head(0)

    def to_json(self, top: int | None = 50) -> dict[str, Any]:
        """A JSON-ready dict: ``totals``, ``collapse``, ``histogram`` and the top ``top`` tokens by df."""
        frame = self.tokens if top is None else self.tokens.head(top)
        return {
            "model": self.model,
            "corpus": self.corpus,
            "totals": asdict(self.totals),
            "collapse": {
                "collapsed": self.collapse.collapsed,
                "kinds": list(self.collapse.kinds),
                "reasons": list(self.collapse.reasons),
            },
            "histogram": [asdict(b) for b in self.histogram],
            "notes": list(self.notes),
            "report_seconds": round(self.seconds, 4),
            "tokens": frame_records(frame),
        }


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a frame as plain-Python dicts (numpy scalars unwrapped; for JSON)."""
    out = []
    for row in frame.itertuples(index=False):
        rec = row._asdict()
        for k, v in rec.items():
            if isinstance(v, np.generic):
                rec[k] = v.item()
        out.append(rec)
    return out


def input_matrix(input_ids: Sequence[Sequence[int]], vocab_size: int) -> sp.csr_matrix:
    """A boolean ``[documents, vocab]`` matrix: which ids occur in each document's input.

    Raises:
        ValueError: an id lies outside ``[0, vocab_size)``.
    """
    lengths = np.fromiter((len(s) for s in input_ids), dtype=np.int64, count=len(input_ids))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    cols = np.fromiter((i for s in input_ids for i in s), dtype=np.int64, count=int(indptr[-1]))
    if cols.size and (cols.min() < 0 or cols.max() >= vocab_size):
        raise ValueError(f"input token ids must lie in [0, {vocab_size}); got {cols.min()}..{cols.max()}")
    m = sp.csr_matrix((np.ones(cols.size, dtype=bool), cols, indptr), shape=(len(input_ids), vocab_size))
    m.sum_duplicates()
    return m


def _pick(values: Sequence[str], ids: np.ndarray) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values[ids]
    return np.asarray([values[i] for i in ids.tolist()], dtype=object)


def _check_inputs(
    weights: sp.spmatrix,
    tokens: Sequence[str],
    categories: np.ndarray,
    inputs: sp.spmatrix | None,
    queries: sp.spmatrix | None,
    doc_top_k: int | None,
) -> sp.csr_matrix:
    if not sp.issparse(weights):
        raise ValueError("weights must be a scipy sparse matrix [documents, vocabulary]")
    w = sp.csr_matrix(weights, dtype=np.float64)
    w.sum_duplicates()
    w.eliminate_zeros()
    n, vocab = w.shape
    if len(tokens) != vocab or len(categories) != vocab:
        raise ValueError(
            f"tokens ({len(tokens)}) and categories ({len(categories)}) must have one entry per "
            f"vocabulary column ({vocab})"
        )
    if w.data.size and w.data.min() < 0:
        raise ValueError("document weights must be >= 0 (SPLADE weights are log(1 + relu(logit)))")
    cats = np.asarray(categories)
    if cats.size and (cats.min() < 0 or cats.max() >= len(CATEGORIES)):
        raise ValueError(f"category codes index {', '.join(CATEGORIES)} (0..{len(CATEGORIES) - 1})")
    if inputs is not None and inputs.shape != w.shape:
        raise ValueError(f"input matrix shape {inputs.shape} differs from the weights' {w.shape}")
    if queries is not None and queries.shape[1] != vocab:
        raise ValueError(f"query matrix has {queries.shape[1]} columns; the vocabulary has {vocab}")
    if doc_top_k is not None and doc_top_k < 1:
        raise ValueError(f"doc_top_k must be >= 1 or None, got {doc_top_k}")
    return w


def _top_slot_stopword_docs(w: sp.csr_matrix, stop_cols: np.ndarray, slots: int = _TOP_SLOTS) -> int:
    """Documents with a stopword among their ``slots`` heaviest tokens (ties by token id).

    Linear in the entries: per document, the heaviest stopword (smallest id among equals) is
    in the top ``slots`` iff fewer than ``slots`` entries rank before it.
    """
    if not w.nnz or not stop_cols.any():
        return 0
    n = w.shape[0]
    counts = np.diff(w.indptr)
    rows = np.repeat(np.arange(n, dtype=np.int64), counts)
    cols, data = w.indices.astype(np.int64), w.data
    is_stop = stop_cols[cols]
    non_empty = counts > 0
    starts = w.indptr[:-1][non_empty]
    m = np.full(n, -np.inf)
    m[non_empty] = np.maximum.reduceat(np.where(is_stop, data, -np.inf), starts)
    top_stop = is_stop & (data == m[rows])
    big = np.iinfo(np.int64).max
    c = np.full(n, big)
    c[non_empty] = np.minimum.reduceat(np.where(top_stop, cols, big), starts)
    before = (data > m[rows]) | ((data == m[rows]) & (cols < c[rows]))
    ahead = np.bincount(rows, weights=before, minlength=n)
    has_stop = np.isfinite(m)
    return int((has_stop & (ahead < slots)).sum())


def _surface_table(
    w: sp.csr_matrix,
    rows: np.ndarray,
    ids: np.ndarray,
    frame: pd.DataFrame,
    keys: Sequence[str],
    n: int,
    total_mass: float,
) -> pd.DataFrame:
    """Figures per surface key: ``key, category, df, df_share, mass, mass_share, tokens``.

    A key's ``df`` counts documents where any of its columns is active (not the sum of their
    dfs); its category is that of its heaviest column.
    """
    if len(keys) != w.shape[1]:
        raise ValueError(f"keys ({len(keys)}) must have one entry per vocabulary column ({w.shape[1]})")
    columns = ["key", "category", "df", "df_share", "mass", "mass_share", "tokens"]
    if ids.size == 0:
        return pd.DataFrame(columns=columns)
    key_of = _pick(keys, ids)
    codes, uniques = pd.factorize(pd.Series(key_of, dtype=object))
    k = len(uniques)
    code_of_col = np.full(w.shape[1], -1, dtype=np.int64)
    code_of_col[ids] = codes
    entry_code = code_of_col[w.indices]
    mass = np.bincount(entry_code, weights=w.data, minlength=k)
    if k == ids.size:  # one column per key: the column's df is the key's
        df = np.bincount(entry_code, minlength=k)
    else:
        pairs = np.sort(rows * k + entry_code)  # a sort, not np.unique: its hash path is slow here
        first = np.ones(pairs.size, dtype=bool)
        first[1:] = pairs[1:] != pairs[:-1]
        df = np.bincount(pairs[first] % k, minlength=k)
    # category and member tokens per key: frame rows are by descending df then mass, so a stable sort
    # by mass keeps the heaviest column of each key first
    by_mass = np.argsort(-frame["mass"].to_numpy(), kind="stable")
    first_row = np.full(k, -1, dtype=np.int64)
    first_row[codes[by_mass][::-1]] = by_mass[::-1]
    category = frame["category"].to_numpy()[first_row]
    members = frame["raw"].to_numpy().copy()[first_row]
    sizes = np.bincount(codes, minlength=k)
    order = np.argsort(codes, kind="stable")
    raws_by_key = frame["raw"].to_numpy()[order]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for code in np.flatnonzero(sizes > 1).tolist():
        members[code] = " ".join(sorted(raws_by_key[starts[code] : starts[code] + sizes[code]]))
    out = pd.DataFrame(
        {
            "key": np.asarray(uniques, dtype=object),
            "category": category,
            "df": df,
            "df_share": df / n if n else df * 0.0,
            "mass": mass,
            "mass_share": mass / total_mass if total_mass > 0 else mass * 0.0,
            "tokens": members,
        },
        columns=columns,
    )
    return out.sort_values(["df", "mass"], ascending=False, kind="stable").reset_index(drop=True)


def _histogram(active: np.ndarray) -> tuple[HistogramBin, ...]:
    if active.size == 0:
        return ()
    hi = int(active.max())
    if hi == 0:
        return (HistogramBin(0, 0, int(active.size)),)
    width = max(1, int(np.ceil((hi + 1) / _HIST_BINS)))
    edges = np.arange(0, hi + width + 1, width)
    counts, _ = np.histogram(active, bins=edges)
    return tuple(HistogramBin(int(edges[i]), int(edges[i + 1]), int(c)) for i, c in enumerate(counts))


def check_collapse(totals: ReportTotals, thresholds: CollapseThresholds | None = None) -> CollapseCheck:
    """The collapse verdict for a report's totals (see :class:`CollapseThresholds`)."""
    t = thresholds or CollapseThresholds()
    n = totals.documents
    if n == 0:
        return CollapseCheck(False)
    kinds: list[CollapseKind] = []
    reasons: list[str] = []
    if totals.empty_share > t.empty_share:
        kinds.append("empty")
        reasons.append(
            f"{totals.empty_documents:,} of {n:,} documents ({100 * totals.empty_share:.0f}%) have no "
            "active dimension (vectors collapsed to zero)"
        )
    if totals.mean_active_dims > t.dense_dims:
        kinds.append("dense")
        reasons.append(
            f"documents activate {totals.mean_active_dims:,.0f} dimensions on average, more than "
            f"{t.dense_dims:,.0f} (saturated: nearly every dimension is on)"
        )
    if totals.doc_top_k is not None and totals.capped_documents / n > t.capped_share:
        kinds.append("capped")
        reasons.append(
            f"{totals.capped_documents:,} of {n:,} documents ({100 * totals.capped_documents / n:.0f}%) "
            f"fill the top-{totals.doc_top_k} cap (saturated: the model activates more tokens than "
            "the index keeps)"
        )
    if n >= t.min_documents and totals.always_on_mass_ratio > t.always_on_mass and totals.total_mass > 0:
        kinds.append("always_on")
        reasons.append(
            f"{totals.always_on_tokens:,} tokens active in more than half the documents carry "
            f"{100 * totals.always_on_mass_ratio:.0f}% of the mass (vectors barely depend on the text)"
        )
    return CollapseCheck(bool(kinds), tuple(kinds), tuple(reasons))


def corpus_report(
    weights: sp.spmatrix,
    tokens: Sequence[str],
    categories: np.ndarray,
    *,
    inputs: sp.spmatrix | None = None,
    queries: sp.spmatrix | None = None,
    doc_top_k: int | None = None,
    capped_documents: int | None = None,
    thresholds: CollapseThresholds | None = None,
    model: str = "",
    corpus: str = "",
    notes: Sequence[str] = (),
    keys: Sequence[str] | None = None,
    display: Sequence[str] | None = None,
    context_stopword_mass: float | None = None,
) -> CorpusReport:
    """Per-token and corpus-level figures of a corpus's document vectors.

    Args:
        weights: ``[documents, vocabulary]`` sparse matrix of the document vectors the index
            holds (after the top-k cap).
        tokens: the raw vocabulary string of every column (``▁치료``, ``##료``, ``<s>``).
        categories: per column, a code indexing :data:`sparse_demo.analysis.CATEGORIES`.
        inputs: ``[documents, vocabulary]`` boolean matrix of each document's input token ids
            (:func:`input_matrix`); None leaves the expansion columns empty (NaN).
        queries: ``[queries, vocabulary]`` sparse matrix of query vectors for the FLOPS figures.
        doc_top_k: the cap the vectors were cut at (None: no cap).
        capped_documents: documents the cap cut; None counts those with exactly ``doc_top_k``
            active dimensions.
        thresholds: collapse thresholds.
        model, corpus: display names.
        notes: extra notes for the page.
        keys: a vocabulary-independent key per column (``sparse_demo.compare.token_key``):
            fills :attr:`CorpusReport.surfaces` (figures per surface form, exact document
            frequencies when several columns share a key) for side-by-side comparisons.
        display: the readable token of every column (marker stripped); computed for the
            active columns when None. Pass numpy object arrays for ``tokens`` and ``display``
            (cached per vocabulary) to make the token columns a C-speed lookup.
        context_stopword_mass: the vectors' stopword mass judged in context
            (``sparse_demo.corpus_report.build.context_stopword_mass``); None leaves
            ``context_stopword_mass_ratio`` None.

    Returns:
        A :class:`CorpusReport`.

    Raises:
        ValueError: shapes, weights or categories do not fit together.

    Example:
        >>> import scipy.sparse as sp, numpy as np
        >>> w = sp.csr_matrix(np.array([[1.0, 0.5, 0.0], [2.0, 0.0, 0.0]]))
        >>> r = corpus_report(w, ["▁a", "▁은", "<s>"], np.array([0, 1, 2]))
        >>> r.tokens[["token", "df", "mass"]].values.tolist(), round(r.totals.stopword_mass_ratio, 3)
        ([['a', 2, 3.0], ['은', 1, 0.5]], 0.143)
    """
    t0 = time.perf_counter()
    w = _check_inputs(weights, tokens, categories, inputs, queries, doc_top_k)
    n, vocab = w.shape
    cats = np.asarray(categories, dtype=np.int64)
    cols, data = w.indices, w.data
    df = np.bincount(cols, minlength=vocab)
    mass = np.bincount(cols, weights=data, minlength=vocab)
    active_ids = np.flatnonzero(df)
    maxw = np.zeros(vocab)
    if w.nnz:
        csc = w.tocsc()
        starts = csc.indptr[active_ids]
        maxw[active_ids] = np.maximum.reduceat(csc.data, starts)
    total_mass = float(mass.sum())
    if inputs is not None:
        both = w.multiply(sp.csr_matrix(inputs, dtype=bool)).tocsr()
        both.eliminate_zeros()
        expansion_df = df - np.bincount(both.indices, minlength=vocab)
        expansion_mass = total_mass - float(both.data.sum())
    else:
        expansion_df = None
        expansion_mass = float("nan")

    # per document
    active = np.diff(w.indptr).astype(np.int64)
    non_empty = active > 0
    rows = np.repeat(np.arange(n), active)
    doc_mass = np.bincount(rows, weights=data, minlength=n)
    stop_entry = cats[cols] == _STOP
    doc_stop = np.bincount(rows[stop_entry], weights=data[stop_entry], minlength=n)
    mean_doc_stop = float((doc_stop[non_empty] / doc_mass[non_empty]).mean()) if non_empty.any() else 0.0
    top5_docs = _top_slot_stopword_docs(w, cats == _STOP)

    def share(code: int) -> float:
        return float(mass[cats == code].sum() / total_mass) if total_mass > 0 else 0.0

    always = df * 2 > n
    capped = (
        capped_documents
        if capped_documents is not None
        else (int((active == doc_top_k).sum()) if doc_top_k is not None else 0)
    )
    flops = per_query = None
    n_queries = 0
    if queries is not None:
        q = sp.csr_matrix(queries)
        q.eliminate_zeros()
        n_queries = q.shape[0]
        if n_queries and n:
            p_q = np.bincount(q.indices, minlength=vocab) / n_queries
            flops = float(p_q @ (df / n))
            per_query = flops * n
    n_tokens = int(active_ids.size)
    totals = ReportTotals(
        documents=n,
        empty_documents=int((~non_empty).sum()),
        mean_active_dims=float(active.mean()) if n else 0.0,
        median_active_dims=float(np.median(active)) if n else 0.0,
        max_active_dims=int(active.max()) if n else 0,
        capped_documents=capped,
        doc_top_k=doc_top_k,
        distinct_tokens=n_tokens,
        total_mass=total_mass,
        stopword_mass_ratio=share(_STOP),
        special_mass_ratio=share(_SPECIAL),
        punctuation_mass_ratio=share(_PUNCT),
        mean_doc_stopword_mass_ratio=mean_doc_stop,
        stopword_top5_share=top5_docs / int(non_empty.sum()) if non_empty.any() else 0.0,
        expansion_mass_ratio=expansion_mass / total_mass if total_mass > 0 else 0.0,
        always_on_tokens=int(always.sum()),
        always_on_mass_ratio=float(mass[always].sum() / total_mass) if total_mass > 0 else 0.0,
        posting_entries=int(w.nnz),
        memory_index_bytes=csc_nbytes(sp.csc_matrix(w[:, active_ids], dtype=np.float32)) if w.nnz else 0,
        queries=n_queries,
        flops_per_pair=flops,
        postings_per_query=per_query,
        context_stopword_mass_ratio=(
            (context_stopword_mass / total_mass if total_mass > 0 else 0.0)
            if context_stopword_mass is not None
            else None
        ),
    )

    ids = active_ids[np.lexsort((active_ids, -mass[active_ids], -df[active_ids]))]
    raws = _pick(tokens, ids)
    shown = (
        _pick(display, ids) if display is not None else np.asarray([strip_marker(r) or r for r in raws], dtype=object)
    )
    a_df = df[ids]
    frame = pd.DataFrame(
        {
            "token": shown,
            "raw": raws,
            "id": ids,
            "category": np.asarray(CATEGORIES, dtype=object)[cats[ids]] if ids.size else [],
            "df": a_df,
            "df_share": a_df / n if n else a_df * 0.0,
            "mean_weight": mass[ids] / np.maximum(a_df, 1),
            "max_weight": maxw[ids],
            "mass": mass[ids],
            "mass_share": mass[ids] / total_mass if total_mass > 0 else mass[ids] * 0.0,
            "expansion_df": expansion_df[ids] if expansion_df is not None else np.full(ids.size, -1),
            "expansion_share": (expansion_df[ids] / np.maximum(a_df, 1))
            if expansion_df is not None
            else np.full(ids.size, np.nan),
        },
        columns=list(TOKEN_COLUMNS),
    )
    surfaces = _surface_table(w, rows, ids, frame, keys, n, total_mass) if keys is not None else None
    all_notes = [
        f"Figures are over the document vectors the index holds: after the document top-k cap "
        f"({'none' if doc_top_k is None else doc_top_k} tokens per document).",
        *notes,
    ]
    if inputs is None:
        all_notes.append("Input tokens were not given: expansion figures are empty.")
    histogram, collapse = _histogram(active), check_collapse(totals, thresholds)
    report = CorpusReport(
        totals=totals,
        tokens=frame,
        histogram=histogram,
        collapse=collapse,
        model=model,
        corpus=corpus,
        seconds=time.perf_counter() - t0,
        notes=tuple(all_notes),
        active_dims=active,
        surfaces=surfaces,
    )
    logger.info("corpus report: %d documents, %d tokens, %.3f s", n, n_tokens, report.seconds)
    return report
