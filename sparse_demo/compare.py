"""Model comparison: two (or more) sparse encoders side by side, per query and over a query set.

Tokens of different models are matched by a *key*, the normalised surface form
(:func:`sparse_demo.analysis.normalize_surface`: subword marker removed, NFC, lower case), so
XLM-R ``▁치료``, WordPiece ``치료`` and a byte-level ``Ġ치료`` meet on one row even though their
vocabulary ids differ. Special tokens are keyed by role (``<s>`` and ``[CLS]`` -> ``[CLS]``,
``</s>`` and ``[SEP]`` -> ``[SEP]``, ...). When two vocabulary tokens of *one* model share a
key (``▁치료`` and ``치료``) they are merged into one entry with the larger weight, and the
comparison says so.

Overlap figures, on each model's top-k keys (a key missing from a model's top-k weighs 0):

- ``jaccard`` = |A ∩ B| / |A ∪ B|.
- ``weighted_overlap`` = Σ_key min(w_A, w_B) / Σ_key max(w_A, w_B) over A ∪ B (the
  weighted Jaccard, or Ruzicka similarity).
- ``rbo``: extrapolated rank-biased overlap (Webber, Moffat & Zobel 2010), see :func:`rbo`.

Two empty lists are identical (every figure is 1); one empty list shares nothing (0).

The command line (``python -m sparse_demo compare``) is :func:`add_compare_parser` and
:func:`run_compare`.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal, TextIO

import numpy as np
import pandas as pd

from .analysis import (
    DEFAULT_TOP_K,
    Analyzer,
    LeakageReport,
    QueryAnalysis,
    TokenRow,
    VectorStats,
    batch_leakage,
    normalize_surface,
)
from .encoder import SparseVector
from .korean import Morpheme, morpheme_at, morphemes

logger = logging.getLogger(__name__)

DEFAULT_RBO_P = 0.9
#: Special tokens keyed by their role, so ``<s>`` (XLM-R) and ``[CLS]`` (BERT) share a row.
SPECIAL_KEYS: dict[str, str] = {
    "<s>": "[CLS]", "[CLS]": "[CLS]", "<cls>": "[CLS]", "[BOS]": "[CLS]", "<bos>": "[CLS]",
    "</s>": "[SEP]", "[SEP]": "[SEP]", "<sep>": "[SEP]", "[EOS]": "[SEP]", "<eos>": "[SEP]",
    "<pad>": "[PAD]", "[PAD]": "[PAD]",
    "<unk>": "[UNK]", "[UNK]": "[UNK]",
    "<mask>": "[MASK]", "[MASK]": "[MASK]",
}
#: Sort orders for the "where do the models disagree most" table.
DISAGREEMENT_METRICS: tuple[str, ...] = ("weighted_overlap", "rbo", "jaccard")
NO_SPAN_LABEL = "(special tokens / no text span)"
_EMPTY_VECTOR = SparseVector(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int32))

Status = Literal["both", "only_a", "only_b"]
ProgressFn = Callable[[str, int, int], None]


# ---------------------------------------------------------------------- keys and metrics
def token_key(raw: str, category: str = "content") -> str:
    """The vocabulary-independent key of a token (see the module docstring).

    Example:
        >>> token_key("▁치료"), token_key("치료"), token_key("##료"), token_key("</s>", "special")
        ('치료', '치료', '료', '[SEP]')
    """
    if category == "special":
        return SPECIAL_KEYS.get(raw, raw)
    return normalize_surface(raw) or raw


def jaccard(a: Sequence[str] | set[str], b: Sequence[str] | set[str]) -> float:
    """|A ∩ B| / |A ∪ B| of two key sets (1.0 when both are empty)."""
    sa, sb = set(a), set(b)
    union = sa | sb
    return len(sa & sb) / len(union) if union else 1.0


def weighted_overlap(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Σ min(w_A, w_B) / Σ max(w_A, w_B) over the union of keys, a missing key weighing 0.

    1.0 when both are empty (or all zero).

    Example:
        >>> weighted_overlap({"a": 3, "b": 2, "c": 1}, {"b": 4, "c": 1, "d": 2})
        0.3
    """
    keys = set(a) | set(b)
    lo = sum(min(a.get(k, 0.0), b.get(k, 0.0)) for k in keys)
    hi = sum(max(a.get(k, 0.0), b.get(k, 0.0)) for k in keys)
    return lo / hi if hi > 0 else 1.0


def rbo(a: Sequence[str], b: Sequence[str], p: float = DEFAULT_RBO_P) -> float:
    """Extrapolated rank-biased overlap of two rankings of distinct items.

    With ``S`` the shorter ranking (length ``s``), ``L`` the longer (length ``l``),
    ``X_d = |S[:min(d, s)] ∩ L[:d]|`` the overlap at depth ``d``, Webber, Moffat & Zobel
    (2010), eq. 32::

        RBO_ext = (1 - p) / p * ( Σ_{d=1..l} X_d / d * p^d
                                  + Σ_{d=s+1..l} X_s * (d - s) / (s * d) * p^d )
                  + ( (X_l - X_s) / l + X_s / s ) * p^l

    For equal lengths ``k`` this is ``(1-p)/p Σ_{d=1..k} X_d/d p^d + X_k/k p^k``. It is 1 for
    identical rankings, 0 for disjoint ones, and weighs the top ranks most: with ``p = 0.9``
    the first 10 ranks carry about 86% of the weight.

    Args:
        a: first ranking (best first).
        b: second ranking.
        p: persistence, 0 < p < 1.

    Returns:
        RBO in [0, 1]; 1.0 when both are empty, 0.0 when exactly one is.

    Raises:
        ValueError: ``p`` outside (0, 1), or a ranking repeats an item.

    References:
        W. Webber, A. Moffat, J. Zobel. A similarity measure for indefinite rankings.
        ACM TOIS 28(4), 2010.

    Example:
        >>> round(rbo(["a", "b"], ["b", "a"]), 6)
        0.9
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    for name, seq in (("a", a), ("b", b)):
        if len(set(seq)) != len(seq):
            raise ValueError(f"ranking {name} repeats an item; RBO needs distinct items")
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    short, long_ = (list(a), list(b)) if len(a) <= len(b) else (list(b), list(a))
    s, l_ = len(short), len(long_)
    seen_s: set[str] = set()
    seen_l: set[str] = set()
    overlap = 0
    x_s = 0
    total = 0.0
    for d in range(1, l_ + 1):
        item_l = long_[d - 1]
        if d <= s:
            item_s = short[d - 1]
            if item_s == item_l:
                overlap += 1
            else:
                overlap += (item_s in seen_l) + (item_l in seen_s)
            seen_s.add(item_s)
            seen_l.add(item_l)
            if d == s:
                x_s = overlap
        else:
            overlap += item_l in seen_s
            seen_l.add(item_l)
            total += x_s * (d - s) / (s * d) * p**d
        total += overlap / d * p**d
    value = (1 - p) / p * total + ((overlap - x_s) / l_ + x_s / s) * p**l_
    return float(min(1.0, max(0.0, value)))


# ---------------------------------------------------------------------- keyed top-k lists
@dataclass(frozen=True)
class KeyedToken:
    """One entry of a model's top-k, keyed by normalised surface.

    ``rank`` counts keys (after merging); ``row_rank`` is the token's rank in the raw vector.
    ``merged`` lists the other vocabulary tokens of the same model that share the key.
    """

    key: str
    token: str
    raw: str
    weight: float
    rank: int
    row_rank: int
    category: str
    origin: str
    position: int
    source_text: str
    morpheme: str | None
    merged: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeyedList:
    """A model's top-k keys plus the ranks of the keys that fell just outside it."""

    tokens: tuple[KeyedToken, ...]
    beyond: Mapping[str, int] = field(default_factory=dict)
    merges: tuple[str, ...] = ()

    @property
    def keys(self) -> list[str]:
        return [t.key for t in self.tokens]

    @property
    def weights(self) -> dict[str, float]:
        return {t.key: t.weight for t in self.tokens}

    def get(self, key: str) -> KeyedToken | None:
        return next((t for t in self.tokens if t.key == key), None)


def keyed_top(rows: Sequence[TokenRow], top_k: int = DEFAULT_TOP_K) -> KeyedList:
    """The top-k *keys* of a model's token rows, merging tokens that share a key (max weight).

    Args:
        rows: the model's token rows (any order; ranked here by descending weight).
        top_k: number of keys kept.

    Returns:
        The keyed top-k; ``beyond`` maps the remaining keys of ``rows`` to their key rank, and
        ``merges`` describes every merge that touched a top-k key.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    ordered = sorted(rows, key=lambda r: (-r.weight, r.rank))
    first: dict[str, TokenRow] = {}
    merged: dict[str, list[TokenRow]] = {}
    for row in ordered:
        key = token_key(row.raw, row.category)
        if key in first:
            merged.setdefault(key, []).append(row)
        else:
            first[key] = row
    tokens, beyond, merges = [], {}, []
    for rank, (key, row) in enumerate(first.items(), start=1):
        if rank > top_k:
            beyond[key] = rank
            continue
        others = merged.get(key, [])
        tokens.append(
            KeyedToken(
                key=key, token=row.token, raw=row.raw, weight=float(row.weight), rank=rank,
                row_rank=row.rank, category=row.category, origin=row.origin, position=row.position,
                source_text=row.source_text, morpheme=row.morpheme,
                merged=tuple(o.raw for o in others),
            )
        )
        if others:
            parts = ", ".join(f"`{o.raw}` {o.weight:.3f}" for o in others)
            merges.append(
                f"`{row.raw}` {row.weight:.3f} and {parts} all read '{key}': merged, kept the max weight."
            )
    return KeyedList(tuple(tokens), beyond, tuple(merges))


@dataclass(frozen=True)
class AlignedRow:
    """One key of the union of two top-k lists, with both models' entries side by side.

    ``rank_shift = rank_a - rank_b`` (positive: B ranks the key higher);
    ``weight_delta = weight_b - weight_a`` (a missing entry weighs 0). For a key only one model
    has in its top-k, ``beyond_rank_*`` gives the other model's rank for it past its top-k when
    known (None: not among the other model's analysed tokens).
    """

    key: str
    status: Status
    token_a: str | None
    rank_a: int | None
    weight_a: float | None
    category_a: str | None
    token_b: str | None
    rank_b: int | None
    weight_b: float | None
    category_b: str | None
    rank_shift: int | None
    weight_delta: float
    beyond_rank_a: int | None = None
    beyond_rank_b: int | None = None
    source_a: str = ""
    source_b: str = ""

    @property
    def category(self) -> str:
        return self.category_a or self.category_b or "content"


def align(a: KeyedList, b: KeyedList) -> list[AlignedRow]:
    """Rows of the union of two keyed top-k lists: shared keys on one row, then by best rank.

    Rows are ordered by the better of the two ranks (ties: A's rank first), so the table
    reads top-down like both rankings at once.
    """
    ka = {t.key: t for t in a.tokens}
    kb = {t.key: t for t in b.tokens}
    rows = []
    for key in list(ka) + [k for k in kb if k not in ka]:
        ta, tb = ka.get(key), kb.get(key)
        status: Status = "both" if ta and tb else ("only_a" if ta else "only_b")
        wa = ta.weight if ta else 0.0
        wb = tb.weight if tb else 0.0
        rows.append(
            AlignedRow(
                key=key, status=status,
                token_a=ta.token if ta else None, rank_a=ta.rank if ta else None,
                weight_a=ta.weight if ta else None, category_a=ta.category if ta else None,
                token_b=tb.token if tb else None, rank_b=tb.rank if tb else None,
                weight_b=tb.weight if tb else None, category_b=tb.category if tb else None,
                rank_shift=(ta.rank - tb.rank) if ta and tb else None,
                weight_delta=round(wb - wa, 6),
                beyond_rank_a=a.beyond.get(key) if not ta else None,
                beyond_rank_b=b.beyond.get(key) if not tb else None,
                source_a=ta.source_text if ta else "", source_b=tb.source_text if tb else "",
            )
        )
    inf = math.inf
    rows.sort(key=lambda r: (min(r.rank_a or inf, r.rank_b or inf), r.rank_a or inf, r.key))
    return rows


@dataclass(frozen=True)
class Overlap:
    """The three overlap figures of two keyed top-k lists."""

    jaccard: float
    weighted_overlap: float
    rbo: float


def overlap(a: KeyedList, b: KeyedList, rbo_p: float = DEFAULT_RBO_P) -> Overlap:
    """Jaccard, weighted overlap and RBO of two keyed top-k lists."""
    return Overlap(
        jaccard=jaccard(a.keys, b.keys),
        weighted_overlap=weighted_overlap(a.weights, b.weights),
        rbo=rbo(a.keys, b.keys, rbo_p),
    )


# ---------------------------------------------------------------------- morpheme view
@dataclass(frozen=True)
class MorphemeRow:
    """Weight each model puts on one Kiwi morpheme of the query (through source positions).

    A token belongs to the morpheme that overlaps the character span of its source position
    (the input position whose logit was the max) the most. ``mass_*`` sums every active token
    of the vector; ``share_*`` divides by the vector's L1; ``tokens_*`` lists the heaviest.
    ``index`` is -1 for the mass that came from special positions (``<s>``, ``</s>``) or
    positions without a text span.
    """

    index: int
    morpheme: str
    text: str
    start: int
    end: int
    mass_a: float
    mass_b: float
    share_a: float
    share_b: float
    tokens_a: str
    tokens_b: str


def _position_morphemes(offsets: Sequence[tuple[int, int]], morphs: Sequence[Morpheme]) -> np.ndarray:
    morphs = list(morphs)
    index = {m: i for i, m in enumerate(morphs)}
    out = np.full(len(offsets) + 1, -1, dtype=np.int64)  # last slot: out-of-range positions
    for p, (start, end) in enumerate(offsets):
        if end > start:
            m = morpheme_at(morphs, start, end)
            if m is not None:
                out[p] = index[m]
    return out


def morpheme_masses(
    analysis: QueryAnalysis, morphs: Sequence[Morpheme], n_tokens: int = 3
) -> tuple[np.ndarray, list[list[str]]]:
    """Per morpheme (plus a last slot for no-span positions): weight mass and top tokens.

    Args:
        analysis: one model's analysis, with its full vector.
        morphs: the query's morphemes (``korean.morphemes(text)``).
        n_tokens: tokens listed per morpheme (from the analysis rows, heaviest first).

    Returns:
        ``(mass [len(morphs) + 1], tokens per slot)``; the last slot is the no-span mass.
    """
    enc = analysis.encoding
    pos_map = _position_morphemes(enc.offsets, morphs)
    n = len(morphs)
    vec = enc.vector
    slots = pos_map[np.minimum(vec.positions.astype(np.int64), len(enc.offsets))]
    slots[slots < 0] = n
    mass = np.bincount(slots, weights=vec.weights.astype(np.float64), minlength=n + 1)
    tokens: list[list[str]] = [[] for _ in range(n + 1)]
    for row in analysis.rows:
        slot = int(pos_map[min(row.position, len(enc.offsets))])
        slot = n if slot < 0 else slot
        if len(tokens[slot]) < n_tokens:
            tokens[slot].append(f"{row.token} {row.weight:.2f}")
    return mass, tokens


def morpheme_view(a: QueryAnalysis, b: QueryAnalysis, n_tokens: int = 3) -> list[MorphemeRow]:
    """The two models' weight per Kiwi morpheme of the (shared) query text."""
    text = a.encoding.text
    morphs = morphemes(text)
    mass_a, tok_a = morpheme_masses(a, morphs, n_tokens)
    mass_b, tok_b = morpheme_masses(b, morphs, n_tokens)
    l1_a, l1_b = float(mass_a.sum()), float(mass_b.sum())
    rows = []
    for i in range(len(morphs) + 1):
        if i == len(morphs):
            if mass_a[i] == 0 and mass_b[i] == 0:
                continue
            label, span, start, end, index = NO_SPAN_LABEL, "", -1, -1, -1
        else:
            m = morphs[i]
            label, span, start, end, index = m.label, text[m.start:m.end], m.start, m.end, i
        rows.append(
            MorphemeRow(
                index=index, morpheme=label, text=span, start=start, end=end,
                mass_a=round(float(mass_a[i]), 4), mass_b=round(float(mass_b[i]), 4),
                share_a=round(float(mass_a[i]) / l1_a, 4) if l1_a > 0 else 0.0,
                share_b=round(float(mass_b[i]) / l1_b, 4) if l1_b > 0 else 0.0,
                tokens_a=", ".join(tok_a[i]), tokens_b=", ".join(tok_b[i]),
            )
        )
    return rows


# ---------------------------------------------------------------------- one query
@dataclass(frozen=True)
class ModelSide:
    """One model's figures for a query (shown side by side)."""

    model: str
    stats: VectorStats
    leakage: LeakageReport
    num_tokens: int
    truncated: bool
    notes: tuple[str, ...] = ()
    merges: tuple[str, ...] = ()

    @classmethod
    def of(cls, analysis: QueryAnalysis, keyed: KeyedList) -> ModelSide:
        return cls(
            model=analysis.model, stats=analysis.stats, leakage=analysis.leakage,
            num_tokens=len(analysis.encoding.input_ids), truncated=analysis.encoding.truncated,
            notes=tuple(analysis.notes), merges=keyed.merges,
        )

    def figures(self) -> dict[str, object]:
        lk, st = self.leakage, self.stats
        return {
            "active_dims": st.active_dims,
            "l1": round(st.l1, 4),
            "flops": round(st.flops, 4),
            "topk_mass_ratio": round(st.topk_mass_ratio, 4),
            "stopword_mass_ratio": round(lk.stopword_mass_ratio, 4),
            "special_mass_ratio": round(lk.special_mass_ratio, 4),
            "stopword_topk_ratio": round(lk.stopword_topk_ratio, 4),
            "special_topk_ratio": round(lk.special_topk_ratio, 4),
            "first_stopword_rank": lk.first_stopword_rank,
            "stopword_tokens": ", ".join(lk.stopword_tokens),
            "input_tokens": self.num_tokens,
            "truncated": self.truncated,
        }


ALIGNED_COLUMNS = ["key", "status", "rank_a", "token_a", "weight_a", "rank_b", "token_b", "weight_b",
                   "rank_shift", "weight_delta", "category", "note", "source_a", "source_b"]


def aligned_frame(rows: Sequence[AlignedRow], top_k: int) -> pd.DataFrame:
    """Aligned rows as a table (:data:`ALIGNED_COLUMNS`); ``note`` says where the other model
    ranks a key it does not have in its top-k."""
    records = []
    for r in rows:
        note = ""
        if r.status == "only_a":
            note = (f"B: rank {r.beyond_rank_b} (past its top-{top_k})" if r.beyond_rank_b
                    else "B: not among its analysed tokens")
        elif r.status == "only_b":
            note = (f"A: rank {r.beyond_rank_a} (past its top-{top_k})" if r.beyond_rank_a
                    else "A: not among its analysed tokens")
        records.append({**asdict(r), "category": r.category, "note": note})
    frame = pd.DataFrame(records, columns=ALIGNED_COLUMNS)
    for col in ("rank_a", "rank_b", "rank_shift"):  # integers with gaps, not floats
        frame[col] = pd.array(frame[col].tolist(), dtype="Int64")
    return frame


@dataclass
class QueryComparison:
    """Two models on one query: aligned top-k keys, overlap figures, leakage and morphemes."""

    text: str
    top_k: int
    side_a: ModelSide
    side_b: ModelSide
    rows: list[AlignedRow]
    overlap: Overlap
    rbo_p: float = DEFAULT_RBO_P
    morphemes: list[MorphemeRow] = field(default_factory=list)

    @property
    def model_a(self) -> str:
        return self.side_a.model

    @property
    def model_b(self) -> str:
        return self.side_b.model

    @property
    def shared(self) -> list[AlignedRow]:
        return [r for r in self.rows if r.status == "both"]

    @property
    def only_a(self) -> list[AlignedRow]:
        return [r for r in self.rows if r.status == "only_a"]

    @property
    def only_b(self) -> list[AlignedRow]:
        return [r for r in self.rows if r.status == "only_b"]

    @property
    def notes(self) -> list[str]:
        out = []
        for label, side in (("A", self.side_a), ("B", self.side_b)):
            out += [f"{label} ({side.model}): {n}" for n in side.notes]
            out += [f"{label} ({side.model}): {m}" for m in side.merges]
        return out

    def to_frame(self) -> pd.DataFrame:
        """The aligned table (one row per key of the union of both top-k lists)."""
        return aligned_frame(self.rows, self.top_k)

    def sides_frame(self) -> pd.DataFrame:
        """Stats and leakage of both models, one row per figure."""
        fa, fb = self.side_a.figures(), self.side_b.figures()
        return pd.DataFrame(
            {"figure": list(fa), f"A: {self.model_a}": list(fa.values()), f"B: {self.model_b}": list(fb.values())}
        )

    def morpheme_frame(self) -> pd.DataFrame:
        columns = [f.name for f in dataclasses.fields(MorphemeRow)]
        return pd.DataFrame([asdict(m) for m in self.morphemes], columns=columns)

    def to_json(self, *, morphemes: bool = True) -> dict:
        def side(s: ModelSide) -> dict:
            return {"model": s.model, "stats": asdict(s.stats), "leakage": asdict(s.leakage),
                    "input_tokens": s.num_tokens, "truncated": s.truncated}

        out = {
            "text": self.text,
            "model_a": self.model_a,
            "model_b": self.model_b,
            "top_k": self.top_k,
            "jaccard": self.overlap.jaccard,
            "weighted_overlap": self.overlap.weighted_overlap,
            "rbo": self.overlap.rbo,
            "rbo_p": self.rbo_p,
            "tokens": [asdict(r) for r in self.rows],
            "shared": [r.key for r in self.shared],
            "only_a": [r.key for r in self.only_a],
            "only_b": [r.key for r in self.only_b],
            "a": side(self.side_a),
            "b": side(self.side_b),
            "notes": self.notes,
        }
        if morphemes:
            out["morphemes"] = [asdict(m) for m in self.morphemes]
        return out


def compare_analyses(
    a: QueryAnalysis,
    b: QueryAnalysis,
    top_k: int = DEFAULT_TOP_K,
    *,
    rbo_p: float = DEFAULT_RBO_P,
    with_morphemes: bool = True,
) -> QueryComparison:
    """Compare two models' analyses of the same text.

    Args:
        a: model A's analysis (``Analyzer.analyze``).
        b: model B's analysis of the same text.
        top_k: keys compared per model.
        rbo_p: RBO persistence.
        with_morphemes: also build the morpheme view (needs the full vectors).

    Raises:
        ValueError: the analyses are of different texts, or bad ``top_k`` / ``rbo_p``.
    """
    if a.encoding.text != b.encoding.text:
        raise ValueError("the two analyses are of different texts")
    ka, kb = keyed_top(a.rows, top_k), keyed_top(b.rows, top_k)
    return QueryComparison(
        text=a.encoding.text,
        top_k=top_k,
        side_a=ModelSide.of(a, ka),
        side_b=ModelSide.of(b, kb),
        rows=align(ka, kb),
        overlap=overlap(ka, kb, rbo_p),
        rbo_p=rbo_p,
        morphemes=morpheme_view(a, b) if with_morphemes else [],
    )


# ---------------------------------------------------------------------- query sets
def slim(analysis: QueryAnalysis) -> QueryAnalysis:
    """A copy without the full vector (rows, stats and leakage kept): cheap to hold by the 1000."""
    enc = dataclasses.replace(analysis.encoding, vector=_EMPTY_VECTOR)
    return QueryAnalysis(encoding=enc, rows=analysis.rows, stats=analysis.stats, leakage=analysis.leakage,
                         model=analysis.model, notes=list(analysis.notes))


def analyze_query_set(
    analyzers: Mapping[str, Analyzer],
    queries: Sequence[str],
    top_k: int = DEFAULT_TOP_K,
    *,
    batch_size: int = 32,
    progress: ProgressFn | None = None,
) -> dict[str, list[QueryAnalysis]]:
    """Analyse every query with every model: one batched ``encode`` call per model.

    The returned analyses are :func:`slim` (no full vector), so a large set stays small.

    Args:
        analyzers: display name -> analyzer.
        queries: the texts.
        top_k: top-k used for the leakage figures.
        batch_size: encoder batch size.
        progress: called as ``progress(model_name, done, total)`` while a model encodes.
    """
    out: dict[str, list[QueryAnalysis]] = {}
    for name, analyzer in analyzers.items():
        def report(done: int, total: int, _name: str = name) -> None:
            if progress is not None:
                progress(_name, done, total)

        encodings: list = analyzer.encoder.encode(list(queries), batch_size=batch_size, progress=report)
        results = []
        for i, enc in enumerate(encodings):
            results.append(slim(analyzer.analyze_encoding(enc, top_k)))
            encodings[i] = None  # free each full vector as soon as it is summarised
        for r in results:
            r.model = name
        out[name] = results
        logger.info("Analysed %d queries with %s", len(results), name)
    return out


PAIR_COLUMNS = ["query_index", "query", "jaccard", "weighted_overlap", "rbo", "shared", "only_a", "only_b",
                "top_a", "top_b"]


@dataclass
class SetComparison:
    """Two or more models over a query set.

    Attributes:
        models: model names, in the order given.
        queries: the texts.
        top_k: keys compared per model.
        summary: one row per model: mean leakage figures, mean active dims, share of queries
            with a stopword in the top-1 / top-5 (``analysis.batch_leakage``).
        leaking_tokens: per model, the stopword / special tokens most often in a top-k.
        per_query: per model and query, the leakage figures.
        comparisons: per model pair ``(a, b)`` (a before b in ``models``), one
            :class:`QueryComparison` per query (without the morpheme view).
        failed: models that could not be used, with the reason.
    """

    models: list[str]
    queries: list[str]
    top_k: int
    summary: pd.DataFrame
    leaking_tokens: pd.DataFrame
    per_query: pd.DataFrame
    comparisons: dict[tuple[str, str], list[QueryComparison]]
    rbo_p: float = DEFAULT_RBO_P
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return list(self.comparisons)

    def _pair(self, a: str, b: str) -> tuple[list[QueryComparison], bool]:
        if (a, b) in self.comparisons:
            return self.comparisons[(a, b)], False
        if (b, a) in self.comparisons:
            return self.comparisons[(b, a)], True
        raise ValueError(f"no comparison of {a!r} and {b!r}; pairs: {self.pairs}")

    def pair_frame(self, a: str, b: str) -> pd.DataFrame:
        """Per query overlap figures of models ``a`` and ``b`` (in that orientation)."""
        comps, swapped = self._pair(a, b)
        records = []
        for i, c in enumerate(comps):
            only_a, only_b = [r.key for r in c.only_a], [r.key for r in c.only_b]
            top_a = [r.key for r in sorted(c.rows, key=lambda r: r.rank_a or 1e9) if r.rank_a][:10]
            top_b = [r.key for r in sorted(c.rows, key=lambda r: r.rank_b or 1e9) if r.rank_b][:10]
            if swapped:
                only_a, only_b, top_a, top_b = only_b, only_a, top_b, top_a
            records.append({
                "query_index": i, "query": c.text,
                "jaccard": round(c.overlap.jaccard, 4),
                "weighted_overlap": round(c.overlap.weighted_overlap, 4),
                "rbo": round(c.overlap.rbo, 4),
                "shared": len(c.shared), "only_a": " ".join(only_a), "only_b": " ".join(only_b),
                "top_a": " ".join(top_a), "top_b": " ".join(top_b),
            })
        return pd.DataFrame(records, columns=PAIR_COLUMNS)

    def disagreements(self, a: str, b: str, by: str = "weighted_overlap", n: int | None = None) -> pd.DataFrame:
        """Queries where ``a`` and ``b`` disagree most: lowest ``by`` first (ties: the others).

        Raises:
            ValueError: ``by`` is not one of :data:`DISAGREEMENT_METRICS`.
        """
        if by not in DISAGREEMENT_METRICS:
            raise ValueError(f"by must be one of {', '.join(DISAGREEMENT_METRICS)}; got {by!r}")
        frame = self.pair_frame(a, b)
        keys = [by] + [m for m in DISAGREEMENT_METRICS if m != by] + ["query_index"]
        frame = frame.sort_values(keys, kind="stable").reset_index(drop=True)
        frame.insert(0, "rank", range(1, len(frame) + 1))
        return frame if n is None else frame.head(n)

    def pair_summary(self) -> pd.DataFrame:
        """Mean and median overlap figures per model pair."""
        records = []
        for (a, b), comps in self.comparisons.items():
            rec: dict[str, object] = {"model_a": a, "model_b": b, "queries": len(comps)}
            for metric in ("jaccard", "weighted_overlap", "rbo"):
                values = np.array([getattr(c.overlap, metric) for c in comps], dtype=np.float64)
                rec[f"mean_{metric}"] = round(float(values.mean()), 4) if values.size else None
                rec[f"median_{metric}"] = round(float(np.median(values)), 4) if values.size else None
            records.append(rec)
        return pd.DataFrame(records)

    def to_json(self, *, details: bool = True, most: int = 10) -> dict:
        """A JSON-able dict: summary, leaking tokens, and per pair the figures per query."""
        pairs = []
        for a, b in self.pairs:
            comps, _ = self._pair(a, b)
            summary_row = self.pair_summary().query("model_a == @a and model_b == @b")
            entry = {
                "model_a": a,
                "model_b": b,
                **{k: v for k, v in summary_row.iloc[0].to_dict().items() if k not in ("model_a", "model_b")},
                "most_disagreeing": self.disagreements(a, b, n=most).to_dict(orient="records"),
            }
            if details:
                entry["queries"] = [c.to_json(morphemes=False) for c in comps]
            pairs.append(entry)
        leaking: dict[str, list] = {}
        for model in self.models:
            part = self.leaking_tokens[self.leaking_tokens["model"] == model] if len(self.leaking_tokens) else []
            leaking[model] = part.drop(columns="model").to_dict(orient="records") if len(part) else []
        return {
            "models": self.models,
            "queries": len(self.queries),
            "top_k": self.top_k,
            "rbo_p": self.rbo_p,
            "summary": self.summary.to_dict(orient="records"),
            "leaking_tokens": leaking,
            "pairs": pairs,
            "failed": dict(self.failed),
        }


def compare_query_set(
    analyses: Mapping[str, Sequence[QueryAnalysis]],
    top_k: int = DEFAULT_TOP_K,
    *,
    rbo_p: float = DEFAULT_RBO_P,
    failed: Mapping[str, str] | None = None,
) -> SetComparison:
    """Aggregate per-model leakage and per-pair overlap over a query set.

    Args:
        analyses: model name -> its analyses of the same queries, in the same order
            (``analyze_query_set``). One model gives the leakage summary without pairs.
        top_k: keys compared per model and top-k of the leakage figures.
        rbo_p: RBO persistence.
        failed: models left out, with the reason (carried into the result).

    Raises:
        ValueError: no model, or the models' query lists differ.
    """
    models = list(analyses)
    if not models:
        raise ValueError("no model to compare")
    queries = [a.encoding.text for a in analyses[models[0]]]
    for m in models[1:]:
        if [a.encoding.text for a in analyses[m]] != queries:
            raise ValueError(f"model {m!r} analysed other queries than {models[0]!r}")
    summaries, leaking, per_query = [], [], []
    for m in models:
        bl = batch_leakage(analyses[m], top_k)
        summaries.append({"model": m, **bl.summary})
        leaking.append(bl.leaking_tokens.assign(model=m))
        per_query.append(bl.per_query.assign(model=m))
    leaking_frame = pd.concat(leaking, ignore_index=True) if leaking else pd.DataFrame()
    if len(leaking_frame):
        leaking_frame = leaking_frame[["model"] + [c for c in leaking_frame.columns if c != "model"]]
    per_query_frame = pd.concat(per_query, ignore_index=True)
    per_query_frame = per_query_frame[["model"] + [c for c in per_query_frame.columns if c != "model"]]
    keyed = {m: [keyed_top(a.rows, top_k) for a in analyses[m]] for m in models}
    comparisons: dict[tuple[str, str], list[QueryComparison]] = {}
    for ma, mb in itertools.combinations(models, 2):
        comps = []
        for qa, qb, ka, kb in zip(analyses[ma], analyses[mb], keyed[ma], keyed[mb]):
            comps.append(QueryComparison(
                text=qa.encoding.text, top_k=top_k, side_a=ModelSide.of(qa, ka), side_b=ModelSide.of(qb, kb),
                rows=align(ka, kb), overlap=overlap(ka, kb, rbo_p), rbo_p=rbo_p,
            ))
        comparisons[(ma, mb)] = comps
    return SetComparison(
        models=models, queries=queries, top_k=top_k, summary=pd.DataFrame(summaries),
        leaking_tokens=leaking_frame, per_query=per_query_frame, comparisons=comparisons,
        rbo_p=rbo_p, failed=dict(failed or {}),
    )


# ---------------------------------------------------------------------- command line
def add_compare_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``compare`` on an argparse sub-parser set (``set_defaults(func=run_compare)``)."""
    p = subparsers.add_parser(
        "compare",
        help="compare two or more sparse encoders on queries (overlap, rank shifts, leakage)",
        description=(
            "Per query (TEXT... with two models): aligned top-k tokens, tokens only A / only B has, "
            "Jaccard, weighted overlap, RBO and each model's leakage. Query set (--queries FILE, or "
            "TEXT... with more than two models): per-model leakage summary and, per model pair, the "
            "queries where the models disagree most. Models are preset names, local folders or Hub ids."
        ),
    )
    p.add_argument("texts", nargs="*", metavar="TEXT", help="queries to compare")
    p.add_argument("--model-a", help="model A (preset name, local folder or Hub id)")
    p.add_argument("--model-b", help="model B")
    p.add_argument("--model", dest="models", action="append", default=None, metavar="MODEL",
                   help="a model, repeatable (set mode takes two or more)")
    p.add_argument("--queries", metavar="FILE", help="a query file (.txt, .csv, .tsv, .jsonl): set mode")
    p.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help="keys compared per model (default 20)")
    p.add_argument("--rbo-p", type=float, default=DEFAULT_RBO_P, help="RBO persistence (default 0.9)")
    p.add_argument("--stopwords", metavar="FILE", help="a stopword list replacing the bundled one")
    p.add_argument("--no-pos-rule", action="store_true", help="do not count Kiwi function morphemes as stopwords")
    p.add_argument("--device", default=None, help="auto, cpu or cuda (default: settings)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=run_compare)
    return p


def _model_list(args: argparse.Namespace) -> list[str]:
    names = [getattr(args, "model_a", None), getattr(args, "model_b", None), *(getattr(args, "models", None) or [])]
    out: list[str] = []
    for n in names:
        if n and n.strip() and n.strip() not in out:
            out.append(n.strip())
    return out


def run_compare(args: argparse.Namespace, *, registry=None, out: TextIO | None = None,
                err: TextIO | None = None) -> int:
    """Run ``compare`` from parsed arguments (see :func:`add_compare_parser`).

    Args:
        args: the parsed arguments.
        registry: a :class:`~sparse_demo.models.ModelRegistry` to reuse (a fresh one otherwise).
        out: where results go (stdout); ``err``: where problems go (stderr).

    Returns:
        0 on success; 1 when results were printed but some model failed to load; 2 when
        nothing could be compared (bad input, fewer than two usable models).
    """
    from .korean import StopwordRule, load_stopwords
    from .models import ModelRegistry
    from .textio import clean_query, read_query_file

    out = out or sys.stdout
    err = err or sys.stderr
    models = _model_list(args)
    top_k = int(getattr(args, "top_k", DEFAULT_TOP_K) or DEFAULT_TOP_K)
    rbo_p = float(getattr(args, "rbo_p", DEFAULT_RBO_P) or DEFAULT_RBO_P)
    as_json = bool(getattr(args, "json", False))
    try:
        if len(models) < 2:
            same = " (the ones given name the same model)" if getattr(args, "model_a", None) else ""
            raise ValueError(f"give two different models: --model-a A --model-b B (or --model repeated){same}")
        if top_k < 1:
            raise ValueError(f"--top-k must be >= 1, got {top_k}")
        if not 0 < rbo_p < 1:
            raise ValueError(f"--rbo-p must be in (0, 1), got {rbo_p}")
        queries_file = getattr(args, "queries", None)
        texts = list(getattr(args, "texts", None) or [])
        if queries_file:
            queries = read_query_file(queries_file)
        elif texts:
            queries = [clean_query(t) for t in texts]
        else:
            raise ValueError("give query TEXT arguments or --queries FILE")
        set_mode = bool(queries_file) or len(models) > 2
        words = load_stopwords(args.stopwords) if getattr(args, "stopwords", None) else None
        rule = StopwordRule(words, use_pos_rule=not getattr(args, "no_pos_rule", False))
    except (OSError, ValueError) as exc:
        err.write(f"error: {exc}\n")
        return 2
    if registry is None:
        from .config import load_settings

        settings = load_settings()
        if getattr(args, "device", None):
            settings = dataclasses.replace(settings, device=args.device)
        registry = ModelRegistry(settings)
    analyzers: dict[str, Analyzer] = {}
    failed: dict[str, str] = {}
    for name in models:
        encoder, error = registry.try_get(name)
        if encoder is None:
            failed[name] = error or "unknown error"
            err.write(f"warning: model {name!r} could not be loaded: {error}\n")
        else:
            analyzers[name] = Analyzer(encoder, rule)
    if len(analyzers) < 2:
        err.write(f"error: {len(analyzers)} of {len(models)} models loaded; comparing needs two.\n")
        return 2
    batch_size = int(getattr(args, "batch_size", 32) or 32)
    try:
        if set_mode:
            analyses = analyze_query_set(analyzers, queries, top_k, batch_size=batch_size)
            result = compare_query_set(analyses, top_k, rbo_p=rbo_p, failed=failed)
            if as_json:
                json.dump(result.to_json(), out, ensure_ascii=False, indent=2, default=_json_default)
                out.write("\n")
            else:
                out.write(format_set(result))
        else:
            name_a, name_b = list(analyzers)
            res_a = analyzers[name_a].analyze(queries, top_k, batch_size=batch_size)
            res_b = analyzers[name_b].analyze(queries, top_k, batch_size=batch_size)
            comps = [compare_analyses(a, b, top_k, rbo_p=rbo_p) for a, b in zip(res_a, res_b)]
            if as_json:
                payload = {"queries": [c.to_json() for c in comps], "failed": failed}
                json.dump(payload, out, ensure_ascii=False, indent=2, default=_json_default)
                out.write("\n")
            else:
                out.write("\n".join(format_comparison(c) for c in comps))
    except ValueError as exc:
        err.write(f"error: {exc}\n")
        return 2
    return 1 if failed else 0


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


def format_comparison(c: QueryComparison) -> str:
    """A readable block for one query comparison (the CLI's table output)."""
    ov = c.overlap
    lines = [
        f"query: {c.text}",
        f"A = {c.model_a}   B = {c.model_b}   top-{c.top_k}",
        (f"jaccard {ov.jaccard:.3f}   weighted overlap {ov.weighted_overlap:.3f}   "
         f"RBO(p={c.rbo_p}) {ov.rbo:.3f}   shared {len(c.shared)}, only A {len(c.only_a)}, "
         f"only B {len(c.only_b)}"),
    ]
    for label, side in (("A", c.side_a), ("B", c.side_b)):
        lk = side.leakage
        lines.append(
            f"{label} leakage: stopword mass {lk.stopword_mass_ratio:.1%}, special mass {lk.special_mass_ratio:.1%}, "
            f"stopword top-k slots {lk.stopword_topk_ratio:.1%}, active dims {side.stats.active_dims}"
        )
    lines += [f"note: {n}" for n in c.notes]
    frame = c.to_frame()[["rank_a", "token_a", "weight_a", "rank_b", "token_b", "weight_b", "rank_shift", "status"]]
    lines.append(frame.astype(object).where(frame.notna(), "-").to_string(index=False))
    return "\n".join(lines) + "\n"


def format_set(s: SetComparison, most: int = 10) -> str:
    """A readable report of a set comparison (the CLI's table output)."""
    lines = [f"{len(s.queries)} queries, top-{s.top_k}, models: {', '.join(s.models)}"]
    lines += [f"failed: {m}: {why}" for m, why in s.failed.items()]
    lines += ["", "per model:", s.summary.to_string(index=False, float_format=lambda x: f"{x:.4f}")]
    if len(s.leaking_tokens):
        lines += ["", "most leaking tokens:", s.leaking_tokens.groupby("model").head(5).to_string(index=False)]
    if s.pairs:
        lines += ["", "per pair:", s.pair_summary().to_string(index=False)]
    for a, b in s.pairs:
        lines += ["", f"most disagreeing queries, A = {a}, B = {b} (lowest weighted overlap):"]
        frame = s.disagreements(a, b, n=most)[["rank", "query", "weighted_overlap", "rbo", "jaccard",
                                               "only_a", "only_b"]]
        lines.append(frame.to_string(index=False, max_colwidth=40))
    return "\n".join(lines) + "\n"
