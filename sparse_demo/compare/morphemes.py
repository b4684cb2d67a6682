"""The morpheme view: how much weight each model puts on each Kiwi morpheme of the query.

A token belongs to the morpheme whose character span overlaps most the span of the token's
source position (the input position whose logit was the max).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..analysis import QueryAnalysis
from ..korean import Morpheme, morpheme_at, morphemes

NO_SPAN_LABEL = "(special tokens / no text span)"


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
            label, span, start, end, index = m.label, text[m.start : m.end], m.start, m.end, i
        rows.append(
            MorphemeRow(
                index=index,
                morpheme=label,
                text=span,
                start=start,
                end=end,
                mass_a=round(float(mass_a[i]), 4),
                mass_b=round(float(mass_b[i]), 4),
                share_a=round(float(mass_a[i]) / l1_a, 4) if l1_a > 0 else 0.0,
                share_b=round(float(mass_b[i]) / l1_b, 4) if l1_b > 0 else 0.0,
                tokens_a=", ".join(tok_a[i]),
                tokens_b=", ".join(tok_b[i]),
            )
        )
    return rows


__all__ = ["NO_SPAN_LABEL", "MorphemeRow", "morpheme_masses", "morpheme_view"]
