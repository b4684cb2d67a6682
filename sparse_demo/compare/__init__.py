"""Model comparison: two (or more) sparse encoders side by side, per query and over a query set.

Modules, one concept each:

- :mod:`~sparse_demo.compare.metrics`: ``jaccard``, ``weighted_overlap``, ``rbo``.
- :mod:`~sparse_demo.compare.alignment`: token keys across vocabularies, keyed top-k lists,
  alignment of two lists and their :class:`Overlap`.
- :mod:`~sparse_demo.compare.morphemes`: weight per Kiwi morpheme of the query.
- :mod:`~sparse_demo.compare.query`: :class:`QueryComparison` of two models on one query.
- :mod:`~sparse_demo.compare.query_sets`: :class:`SetComparison` of two or more models over a set.

Overlap figures, on each model's top-k keys (a key missing from a model's top-k weighs 0):

- ``jaccard`` = |A ∩ B| / |A ∪ B|.
- ``weighted_overlap`` = Σ_key min(w_A, w_B) / Σ_key max(w_A, w_B) over A ∪ B (the
  weighted Jaccard, or Ruzicka similarity).
- ``rbo``: extrapolated rank-biased overlap (Webber, Moffat & Zobel 2010), see :func:`rbo`.

Two empty lists are identical (every figure is 1); one empty list shares nothing (0).
The command line (``python -m sparse_demo compare``) is :mod:`sparse_demo.cli.compare`.
"""

from __future__ import annotations

from .alignment import (
    ALIGNED_COLUMNS,
    SPECIAL_KEYS,
    AlignedRow,
    KeyedList,
    KeyedToken,
    Overlap,
    Status,
    align,
    aligned_frame,
    keyed_top,
    overlap,
    token_key,
)
from .metrics import DEFAULT_RBO_P, jaccard, rbo, weighted_overlap
from .morphemes import NO_SPAN_LABEL, MorphemeRow, morpheme_masses, morpheme_view
from .query import ModelSide, QueryComparison, compare_analyses
from .query_sets import (
    DISAGREEMENT_METRICS,
    PAIR_COLUMNS,
    SetComparison,
    analyze_query_set,
    compare_query_set,
    slim,
)

__all__ = [
    "ALIGNED_COLUMNS",
    "DEFAULT_RBO_P",
    "DISAGREEMENT_METRICS",
    "NO_SPAN_LABEL",
    "PAIR_COLUMNS",
    "SPECIAL_KEYS",
    "AlignedRow",
    "KeyedList",
    "KeyedToken",
    "ModelSide",
    "MorphemeRow",
    "Overlap",
    "QueryComparison",
    "SetComparison",
    "Status",
    "align",
    "aligned_frame",
    "analyze_query_set",
    "compare_analyses",
    "compare_query_set",
    "jaccard",
    "keyed_top",
    "morpheme_masses",
    "morpheme_view",
    "overlap",
    "rbo",
    "slim",
    "token_key",
    "weighted_overlap",
]
