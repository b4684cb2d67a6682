"""Corpus report: what a sparse model does to a whole corpus, for one model or two side by side.

Per token: document frequency, mean / max weight where active, mass, category and how often
it is an expansion; over the corpus: always-on tokens, stopword and special-token leakage,
active dimensions per document, index cost (posting entries, memory bytes, FLOPS per query)
and a collapse warning with its reason. All figures are over the document vectors the index
holds, i.e. after the document top-k cap.

* :func:`corpus_report` is the pure core (sparse matrices in, :class:`CorpusReport` out);
* :func:`report_from_vectors` / :func:`report_for_index` build one from an encoder's
  ``{token: weight}`` vectors or a built ``SearchIndex`` (cached per model and corpus);
* :func:`compare_reports` puts two reports side by side, tokens matched by surface form.

Example:
    >>> import numpy as np, scipy.sparse as sp
    >>> w = sp.csr_matrix(np.array([[1.0, 0.5, 0.0], [2.0, 0.0, 0.0]]))
    >>> r = corpus_report(w, ["▁a", "▁은", "<s>"], np.array([0, 1, 2]))
    >>> r.totals.documents, r.totals.posting_entries, r.collapse.collapsed
    (2, 3, False)
"""

from __future__ import annotations

from .build import (
    DEFAULT_CACHE,
    MAX_REPORT_QUERIES,
    ReportCache,
    report_for_index,
    report_from_vectors,
    vectors_matrix,
)
from .core import (
    TOKEN_COLUMNS,
    TOKEN_SORTS,
    CollapseCheck,
    CollapseThresholds,
    CorpusReport,
    HistogramBin,
    ReportTotals,
    check_collapse,
    corpus_report,
    frame_records,
    input_matrix,
)
from .diff import CHANGE_COLUMNS, HEADLINE_FIGURES, ReportComparison, compare_reports

__all__ = [
    "CHANGE_COLUMNS",
    "DEFAULT_CACHE",
    "HEADLINE_FIGURES",
    "MAX_REPORT_QUERIES",
    "TOKEN_COLUMNS",
    "TOKEN_SORTS",
    "CollapseCheck",
    "CollapseThresholds",
    "CorpusReport",
    "HistogramBin",
    "ReportCache",
    "ReportComparison",
    "ReportTotals",
    "check_collapse",
    "compare_reports",
    "corpus_report",
    "frame_records",
    "input_matrix",
    "report_for_index",
    "report_from_vectors",
    "vectors_matrix",
]
