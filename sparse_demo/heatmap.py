"""Which input positions feed which output tokens: the position-by-token heatmap of Explore.

For a text and its top-k output tokens, the value at (position ``t``, token ``v``) is the card's activation
at that position, ``log(1 + relu(logits[t, v]))``; the token's weight is the maximum of its column (the
card's max over positions), and that cell is marked. Rows are the input's subword pieces (special tokens
included), each labelled with the Kiwi morpheme it lies in; :func:`by_morpheme` folds the pieces of one
morpheme into one row (the max of its pieces), so 192 positions read as a few dozen words.

An inference-free query side runs no model: its value is the token's weight at the positions where that
token occurs, and zero elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sparse_demo.korean import morpheme_at, morphemes, strip_marker

#: Output tokens shown at most (columns of the heatmap).
MAX_HEATMAP_TOKENS = 40


@dataclass(frozen=True)
class PositionHeatmap:
    """The values of a heatmap and its labels.

    Attributes:
        values: ``[positions, tokens]`` activations ``log(1 + relu(logit))`` (float32, >= 0).
        pieces: the subword piece at each position (vocabulary strings: ``▁당뇨``, ``<s>``).
        morphemes: the Kiwi morpheme label (``당뇨병/NNG``) each position lies in, or ``""``.
        spans: each position's character span in the text.
        tokens: the output tokens (vocabulary strings), by descending weight.
        token_ids: their ids.
        text: the text.
    """

    values: np.ndarray
    pieces: tuple[str, ...]
    morphemes: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]
    tokens: tuple[str, ...]
    token_ids: tuple[int, ...]
    text: str

    @property
    def weights(self) -> np.ndarray:
        """Each token's weight: its column maximum (equal to the sparse vector's weight)."""
        return self.values.max(axis=0) if self.values.size else np.zeros(len(self.tokens), dtype=np.float32)

    @property
    def argmax(self) -> np.ndarray:
        """The position of each column's maximum (the earliest on ties, as the encoder's)."""
        return self.values.argmax(axis=0) if self.values.size else np.zeros(len(self.tokens), dtype=np.int64)

    def to_frame(self) -> pd.DataFrame:
        """One row per (position, token): ``position, piece, morpheme, token, value, is_max`` (full precision)."""
        n_pos, n_tok = self.values.shape
        best = self.argmax
        pos = np.repeat(np.arange(n_pos), n_tok)
        tok = np.tile(np.arange(n_tok), n_pos)
        return pd.DataFrame(
            {
                "position": pos,
                "piece": [self.pieces[p] for p in pos],
                "morpheme": [self.morphemes[p] for p in pos],
                "token": [self.tokens[t] for t in tok],
                "token_rank": tok + 1,
                "value": self.values.reshape(-1).astype(np.float64),
                "is_max": (best[tok] == pos) & (self.values.reshape(-1) > 0),
            }
        )


def build_heatmap(text: str, input_ids, offsets, values: np.ndarray, token_ids, id_to_token) -> PositionHeatmap:
    """A :class:`PositionHeatmap` from an encoding's ids and offsets and the per-position values.

    Args:
        text: the encoded text.
        input_ids: its input ids (special tokens included), one per position.
        offsets: each position's character span (``(0, 0)`` for special tokens).
        values: ``[positions, tokens]`` activations.
        token_ids: the output token ids of the columns.
        id_to_token: the vocabulary string of an id.
    """
    values = np.asarray(values, dtype=np.float32)
    if values.shape != (len(input_ids), len(token_ids)):
        raise ValueError(f"values have shape {values.shape}, expected {(len(input_ids), len(token_ids))}")
    morphs = morphemes(text)
    labels = []
    for start, end in offsets:
        m = morpheme_at(morphs, int(start), int(end)) if end > start else None
        labels.append(m.label if m else "")
    return PositionHeatmap(
        values=values,
        pieces=tuple(id_to_token(int(i)) for i in input_ids),
        morphemes=tuple(labels),
        spans=tuple((int(s), int(e)) for s, e in offsets),
        tokens=tuple(id_to_token(int(i)) for i in token_ids),
        token_ids=tuple(int(i) for i in token_ids),
        text=text,
    )


def by_morpheme(heatmap: PositionHeatmap) -> pd.DataFrame:
    """The heatmap folded by morpheme: one row per run of consecutive positions in the same morpheme.

    Special tokens and positions outside any morpheme keep a row of their own. Columns: ``row`` (order),
    ``label`` (``당뇨병/NNG`` or the piece), ``positions`` (``"1-2"``), ``token``, ``token_rank``, ``value``
    (the max over the row's positions) and ``is_max`` (the token's maximum lies in this row).
    """
    n_pos = len(heatmap.pieces)
    groups: list[tuple[str, int, int]] = []  # label, first position, last position
    for p in range(n_pos):
        label = heatmap.morphemes[p]
        if groups and label and groups[-1][0] == label and groups[-1][2] == p - 1:
            groups[-1] = (label, groups[-1][1], p)
        else:
            groups.append((label or heatmap.pieces[p], p, p))
    best = heatmap.argmax
    rows = []
    for r, (label, first, last) in enumerate(groups):
        block = heatmap.values[first : last + 1]
        top = block.max(axis=0) if block.size else np.zeros(len(heatmap.tokens))
        where = f"{first}" if first == last else f"{first}-{last}"
        for t, token in enumerate(heatmap.tokens):
            rows.append(
                {
                    "row": r,
                    "label": label,
                    "positions": where,
                    "token": token,
                    "token_rank": t + 1,
                    "value": float(top[t]),
                    "is_max": bool(first <= best[t] <= last and top[t] > 0),
                }
            )
    return pd.DataFrame(rows)


def heatmap_chart(frame: pd.DataFrame, *, row_field: str = "position", row_label: str = "piece"):
    """An Altair heatmap: rows = input positions (or morphemes), columns = output tokens, colour = value.

    The cell holding a token's maximum carries a dot. Tall inputs get a tall chart (14 px a row), which the
    tab shows in a scrolling box; values are rounded to 3 decimals in the tooltip.
    """
    import altair as alt

    data = frame.copy()
    data["row_label"] = data[row_field].astype(str) + " " + data[row_label].astype(str).map(_readable)
    data["column"] = data["token_rank"].astype(str) + ". " + data["token"].astype(str)
    data["shown"] = data["value"].round(3)
    rows = data.drop_duplicates(row_field)["row_label"].tolist()
    columns = data.drop_duplicates("token_rank").sort_values("token_rank")["column"].tolist()
    height = max(120, 14 * len(rows))
    base = alt.Chart(data).encode(
        x=alt.X("column:N", sort=columns, title="output token (by weight)", axis=alt.Axis(labelAngle=-60)),
        y=alt.Y("row_label:N", sort=rows, title="input position"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("value:Q", title="log(1+relu(logit))", scale=alt.Scale(scheme="blues")),
        tooltip=[
            alt.Tooltip("row_label:N", title="position"),
            alt.Tooltip("column:N", title="token"),
            alt.Tooltip("shown:Q", title="value"),
        ],
    )
    marks = base.transform_filter(alt.datum.is_max).mark_point(shape="circle", filled=True, color="#e8590c", size=30)
    return (cells + marks).properties(
        height=height, width="container", autosize=alt.AutoSizeParams(type="fit-x", contains="padding")
    )


def _readable(piece: str) -> str:
    return strip_marker(piece) or piece


__all__ = ["MAX_HEATMAP_TOKENS", "PositionHeatmap", "build_heatmap", "by_morpheme", "heatmap_chart"]
