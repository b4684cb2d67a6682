"""Tokens of different vocabularies on one row: keys, keyed top-k lists, alignment and overlap.

Tokens of different models are matched by a *key*, the normalised surface form
(:func:`sparse_demo.analysis.normalize_surface`: subword marker removed, NFC, lower case), so
XLM-R ``▁치료``, WordPiece ``치료`` and a byte-level ``Ġ치료`` meet on one row even though their
vocabulary ids differ. Special tokens are keyed by role (``<s>`` and ``[CLS]`` -> ``[CLS]``,
``</s>`` and ``[SEP]`` -> ``[SEP]``, ...). When two vocabulary tokens of *one* model share a
key (``▁치료`` and ``치료``) they are merged into one entry with the larger weight, and the
comparison says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import pandas as pd

from ..analysis import DEFAULT_TOP_K, TokenRow, normalize_surface
from .metrics import DEFAULT_RBO_P, jaccard, rbo, weighted_overlap

#: Special tokens keyed by their role, so ``<s>`` (XLM-R) and ``[CLS]`` (BERT) share a row.
SPECIAL_KEYS: dict[str, str] = {
    "<s>": "[CLS]",
    "[CLS]": "[CLS]",
    "<cls>": "[CLS]",
    "[BOS]": "[CLS]",
    "<bos>": "[CLS]",
    "</s>": "[SEP]",
    "[SEP]": "[SEP]",
    "<sep>": "[SEP]",
    "[EOS]": "[SEP]",
    "<eos>": "[SEP]",
    "<pad>": "[PAD]",
    "[PAD]": "[PAD]",
    "<unk>": "[UNK]",
    "[UNK]": "[UNK]",
    "<mask>": "[MASK]",
    "[MASK]": "[MASK]",
}

Status = Literal["both", "only_a", "only_b"]


def token_key(raw: str, category: str = "content") -> str:
    """The vocabulary-independent key of a token (see :mod:`sparse_demo.compare.alignment`).

    Example:
        >>> token_key("▁치료"), token_key("치료"), token_key("##료"), token_key("</s>", "special")
        ('치료', '치료', '료', '[SEP]')
    """
    if category == "special":
        return SPECIAL_KEYS.get(raw, raw)
    return normalize_surface(raw) or raw


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
                key=key,
                token=row.token,
                raw=row.raw,
                weight=float(row.weight),
                rank=rank,
                row_rank=row.rank,
                category=row.category,
                origin=row.origin,
                position=row.position,
                source_text=row.source_text,
                morpheme=row.morpheme,
                merged=tuple(o.raw for o in others),
            )
        )
        if others:
            parts = ", ".join(f"`{o.raw}` {o.weight:.3f}" for o in others)
            merges.append(f"`{row.raw}` {row.weight:.3f} and {parts} all read '{key}': merged, kept the max weight.")
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
                key=key,
                status=status,
                token_a=ta.token if ta else None,
                rank_a=ta.rank if ta else None,
                weight_a=ta.weight if ta else None,
                category_a=ta.category if ta else None,
                token_b=tb.token if tb else None,
                rank_b=tb.rank if tb else None,
                weight_b=tb.weight if tb else None,
                category_b=tb.category if tb else None,
                rank_shift=(ta.rank - tb.rank) if ta and tb else None,
                weight_delta=round(wb - wa, 6),
                beyond_rank_a=a.beyond.get(key) if not ta else None,
                beyond_rank_b=b.beyond.get(key) if not tb else None,
                source_a=ta.source_text if ta else "",
                source_b=tb.source_text if tb else "",
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


ALIGNED_COLUMNS = [
    "key",
    "status",
    "rank_a",
    "token_a",
    "weight_a",
    "rank_b",
    "token_b",
    "weight_b",
    "rank_shift",
    "weight_delta",
    "category",
    "note",
    "source_a",
    "source_b",
]


def aligned_frame(rows: Sequence[AlignedRow], top_k: int) -> pd.DataFrame:
    """Aligned rows as a table (:data:`ALIGNED_COLUMNS`); ``note`` says where the other model
    ranks a key it does not have in its top-k."""
    records = []
    for r in rows:
        note = ""
        if r.status == "only_a":
            note = (
                f"B: rank {r.beyond_rank_b} (past its top-{top_k})"
                if r.beyond_rank_b
                else "B: not among its analysed tokens"
            )
        elif r.status == "only_b":
            note = (
                f"A: rank {r.beyond_rank_a} (past its top-{top_k})"
                if r.beyond_rank_a
                else "A: not among its analysed tokens"
            )
        records.append({**asdict(r), "category": r.category, "note": note})
    frame = pd.DataFrame(records, columns=ALIGNED_COLUMNS)
    for col in ("rank_a", "rank_b", "rank_shift"):  # integers with gaps, not floats
        frame[col] = pd.array(frame[col].tolist(), dtype="Int64")
    return frame


__all__ = [
    "ALIGNED_COLUMNS",
    "SPECIAL_KEYS",
    "AlignedRow",
    "KeyedList",
    "KeyedToken",
    "Overlap",
    "Status",
    "align",
    "aligned_frame",
    "keyed_top",
    "overlap",
    "token_key",
]
