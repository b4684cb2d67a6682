"""Inputs below search: training pairs (read and validated) and the shared benchmark sets.

* :mod:`.pairs`: ``(query, positive[, negative][, teacher_score])`` files, and a pairs list as a judged
  :class:`~sparse_demo.corpus.Corpus` (:func:`corpus_from_pairs`);
* :mod:`.benchmarks`: KoBEST BoolQ and KorSTS from ``../shared/data`` as pairs and judged corpora.

Corpora themselves (jsonl, csv/tsv, BEIR) are read by :mod:`sparse_demo.corpus`.
"""

from __future__ import annotations

from sparse_demo.data.benchmarks import BENCHMARKS, load_boolq, load_korsts
from sparse_demo.data.pairs import (
    DEFAULT_MAX_BYTES,
    Pair,
    PairsDataset,
    PairsReport,
    corpus_from_pairs,
    parse_pairs,
    read_pairs,
)

__all__ = [
    "BENCHMARKS",
    "DEFAULT_MAX_BYTES",
    "Pair",
    "PairsDataset",
    "PairsReport",
    "corpus_from_pairs",
    "load_boolq",
    "load_korsts",
    "parse_pairs",
    "read_pairs",
]
