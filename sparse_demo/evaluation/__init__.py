"""Evaluation: the model card's benchmark table on any Korean QA set, with significance and costs.

Modules, one concept each:

* :mod:`.metrics`: recall@k, MRR@10, nDCG@10 (graded; binary relevance is grade 1), per query and averaged;
* :mod:`.significance`: paired randomization test, bootstrap interval, Holm correction;
* :mod:`.dataset`: judged corpora (:class:`~sparse_demo.corpus.Corpus`) from BEIR folders/zips, pairs files,
  the sample, BoolQ, KorSTS, checked and sampled;
* :mod:`.systems`: ``bm25``, ``sparse:MODEL``, ``hybrid:MODEL[:WEIGHT|:best]``, ``rrf:MODEL`` rows;
* :mod:`.runner`: :func:`evaluate`, the one evaluation function (the Evaluate tab, the trainer's held-out
  check, the demo model's build and the benchmarks call it), through the Search tab's build_index/search;
* :mod:`.weights`: the one hybrid-weight rule and its k-fold cross-validation;
* :mod:`.cost`: active dimensions, FLOPS, index bytes, latency;
* :mod:`.sweeps`: quality against cost under pruning;
* :mod:`.report`: card-layout table, Markdown, CSV/JSON, reference rows, wins/losses;
* :mod:`.charts`: altair curves.

Example:
    >>> from sparse_demo.evaluation import evaluate, load_eval_set, parse_system, to_markdown
    >>> report = evaluate(load_eval_set("sample"), [parse_system("bm25")], {})  # doctest: +SKIP
    >>> print(to_markdown(report))  # doctest: +SKIP
"""

from __future__ import annotations

from .cost import flops, index_bytes, mean_active
from .dataset import (
    load_eval_set,
    make_eval_set,
    sample_queries,
)
from .metrics import (
    DEFAULT_KS,
    METRICS,
    RetrievalMetrics,
    query_metrics,
    rankings_from_scores,
    run_metrics,
)
from .report import (
    CARD_REFERENCE,
    WinsLosses,
    dumps,
    reference_rows,
    runs_csv,
    summary_line,
    table_csv,
    table_rows,
    to_json,
    to_markdown,
    wins_losses,
)
from .runner import (
    DEFAULT_CACHE,
    CostFigures,
    EncodingCache,
    EvalReport,
    EvaluationCancelled,
    SystemResult,
    evaluate,
)
from .significance import ConfidenceInterval, SignificanceResult, bootstrap_ci, holm_adjust, paired_randomization_test
from .sweeps import PrunePoint, prune_sweep, prune_vector
from .systems import SystemSpec, parse_system
from .weights import (
    DEFAULT_FOLDS,
    SWEEP_WEIGHTS,
    TIE_RULE,
    CrossValidation,
    WeightSweep,
    choose_weight,
    cross_validate_weight,
)

__all__ = [
    "CARD_REFERENCE",
    "DEFAULT_FOLDS",
    "SWEEP_WEIGHTS",
    "TIE_RULE",
    "CrossValidation",
    "choose_weight",
    "cross_validate_weight",
    "DEFAULT_CACHE",
    "DEFAULT_KS",
    "METRICS",
    "ConfidenceInterval",
    "CostFigures",
    "EncodingCache",
    "EvalReport",
    "EvaluationCancelled",
    "PrunePoint",
    "RetrievalMetrics",
    "SignificanceResult",
    "SystemResult",
    "SystemSpec",
    "WeightSweep",
    "WinsLosses",
    "bootstrap_ci",
    "dumps",
    "evaluate",
    "flops",
    "holm_adjust",
    "index_bytes",
    "load_eval_set",
    "make_eval_set",
    "mean_active",
    "paired_randomization_test",
    "parse_system",
    "prune_sweep",
    "prune_vector",
    "query_metrics",
    "rankings_from_scores",
    "reference_rows",
    "run_metrics",
    "runs_csv",
    "sample_queries",
    "summary_line",
    "table_csv",
    "table_rows",
    "to_json",
    "to_markdown",
    "wins_losses",
]
