"""Typed results of encoding: a sparse vector and one encoded text."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import DEFAULT_MAX_LENGTH


@dataclass(frozen=True)
class SparseVector:
    """Active dimensions of one sparse vector, sorted by descending weight.

    Attributes:
        token_ids: vocabulary ids (int64).
        weights: ``log(1 + relu(max logit))`` per id (float32, all > 0).
        positions: index into the encoded ``input_ids`` of the position whose logit was the max.
    """

    token_ids: np.ndarray
    weights: np.ndarray
    positions: np.ndarray

    def __len__(self) -> int:
        return int(self.token_ids.shape[0])

    @property
    def l1(self) -> float:
        return float(self.weights.sum(dtype=np.float64))

    def without(self, ids: frozenset[int] | set[int]) -> SparseVector:
        """A copy without the given token ids (e.g. the special tokens)."""
        if not ids or len(self) == 0:
            return self
        keep = ~np.isin(self.token_ids, np.fromiter(ids, dtype=np.int64))
        return SparseVector(self.token_ids[keep], self.weights[keep], self.positions[keep])


@dataclass(frozen=True)
class Encoding:
    """One encoded text: its tokens, their character spans and its full sparse vector.

    ``vector`` holds every active dimension, special tokens included (they are part of the
    leakage report); use :meth:`SpladeEncoder.search_vector` for the vector used in search.
    """

    text: str
    input_ids: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]
    vector: SparseVector
    num_text_tokens: int = 0
    max_length: int = DEFAULT_MAX_LENGTH
    #: The windows a long document was read in, as ``(start, stop)`` ranges of positions in ``input_ids``
    #: (see :mod:`sparse_demo.encoder.windows`); empty when it was read in one piece (or truncated).
    windows: tuple[tuple[int, int], ...] = ()

    def window_of(self, position: int) -> int | None:
        """The first window holding ``position`` (None when the text was read in one piece)."""
        for j, (start, stop) in enumerate(self.windows):
            if start <= position < stop:
                return j
        return None

    @property
    def truncated(self) -> bool:
        """True when the text had more tokens than fit in ``max_length``."""
        return self.num_text_tokens > len(self.input_ids)


__all__ = ["Encoding", "SparseVector"]
