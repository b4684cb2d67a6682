"""Retrieval metrics: one implementation, graded judgements, one value per query and metric.

A *ranking* is a sequence of document ids, best first; judgements are graded qrels
``{doc: grade}`` (grade > 0 is relevant; binary relevance, as pairs give, is grade 1).
:func:`query_metrics` scores one query, :func:`run_metrics` a run; every figure of the package
(the Evaluate tab, the trainer's held-out check, the demo model's build, the benchmarks) comes
from them. :class:`RetrievalMetrics` is the averaged summary the trainer reports.

Definitions (per query, then averaged over queries), the same as ranx / trec_eval:

* ``recall@k``  = ``|relevant ∩ ranking[:k]| / |relevant|``
* ``mrr@10``    = ``1 / rank`` of the first relevant id within the top 10 (0 when none)
* ``ndcg@10``   = ``DCG@10 / IDCG@10`` with ``DCG = sum_i grade_i / log2(i + 1)`` (``i`` 1-based,
  linear gain as trec_eval and ranx's ``ndcg``) and ``IDCG`` the DCG of the grades sorted
  descending.

Example:
    >>> per_query = run_metrics({"a": ["d2", "d1"], "b": ["d9", "d8"]}, {"a": {"d1": 1}, "b": {"d7": 1}})
    >>> m = RetrievalMetrics.from_per_query(per_query)
    >>> round(m.recall[1], 3), round(m.mrr10, 3)
    (0.0, 0.25)
    >>> query_metrics(["d2", "d1"], {"d1": 2})["mrr@10"]
    0.5
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

#: Metric names of the evaluator, in the model card's column order (plus recall@100).
METRICS: tuple[str, ...] = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "recall@100")
DEFAULT_KS: tuple[int, ...] = (1, 5, 10)


@dataclass(frozen=True)
class RetrievalMetrics:
    """Averaged retrieval metrics (the trainer's held-out summary).

    Attributes:
        recall: ``{k: R@k}``.
        mrr10: mean reciprocal rank within the top 10.
        ndcg10: mean nDCG@10.
        num_queries: queries evaluated.
    """

    recall: dict[int, float]
    mrr10: float
    ndcg10: float
    num_queries: int

    @classmethod
    def from_means(
        cls, means: Mapping[str, float], num_queries: int, ks: Sequence[int] = DEFAULT_KS
    ) -> RetrievalMetrics:
        """The summary of mean metrics named as :data:`METRICS` (``recall@K``, ``mrr@10``, ``ndcg@10``)."""
        return cls(
            {int(k): float(means[f"recall@{k}"]) for k in ks},
            float(means["mrr@10"]),
            float(means["ndcg@10"]),
            num_queries,
        )

    @classmethod
    def from_per_query(
        cls, per_query: Mapping[str, Mapping[str, float]], ks: Sequence[int] = DEFAULT_KS
    ) -> RetrievalMetrics:
        """The summary of :func:`run_metrics`' per-query values (means over its queries)."""
        n = len(next(iter(per_query.values())))
        means = {m: (sum(v.values()) / n if n else 0.0) for m, v in per_query.items()}
        return cls.from_means(means, n, ks)

    def as_row(self) -> dict[str, float]:
        """A flat dict for tables: ``R@1, R@5, R@10, MRR@10, nDCG@10``."""
        row = {f"R@{k}": v for k, v in sorted(self.recall.items())}
        row["MRR@10"] = self.mrr10
        row["nDCG@10"] = self.ndcg10
        return row

    def to_dict(self) -> dict:
        d = asdict(self)
        d["recall"] = {str(k): v for k, v in self.recall.items()}
        return d


def rankings_from_scores(scores: np.ndarray, doc_ids: Sequence[Hashable], k: int = 10) -> list[list[Hashable]]:
    """Top-``k`` document ids per row of a ``[queries, docs]`` score matrix (ties: lower index first)."""
    scores = np.asarray(scores)
    k = min(k, scores.shape[1])
    out = []
    for row in scores:
        top = np.argpartition(-row, k - 1)[:k] if k < row.shape[0] else np.arange(row.shape[0])
        top = top[np.lexsort((top, -row[top]))]
        out.append([doc_ids[i] for i in top])
    return out


def _dedupe(ranking: Sequence[Hashable]) -> list[Hashable]:
    seen: set = set()
    return [d for d in ranking if not (d in seen or seen.add(d))]


def query_metrics(
    ranking: Sequence[Hashable], qrels: Mapping[Hashable, int | float], metrics: Sequence[str] = METRICS
) -> dict[str, float]:
    """Metrics of one query's ranking against graded judgements.

    Args:
        ranking: document ids best first (a repeated id counts once, at its first rank).
        qrels: ``{doc id: grade}``; grades > 0 are relevant, 0 or less are not.
        metrics: names among ``recall@K``, ``mrr@K``, ``ndcg@K``, ``precision@K``.

    Raises:
        ValueError: no relevant document, or an unknown metric name.
    """
    relevant = {d: float(g) for d, g in qrels.items() if g > 0}
    if not relevant:
        raise ValueError("the query has no relevant document (every grade is <= 0)")
    ranked = _dedupe(ranking)
    out: dict[str, float] = {}
    for name in metrics:
        kind, _, cut = name.partition("@")
        try:
            k = int(cut)
        except ValueError:
            raise ValueError(f"metric {name!r} needs a cut-off, e.g. ndcg@10") from None
        if k < 1:
            raise ValueError(f"metric {name!r}: the cut-off must be >= 1")
        top = ranked[:k]
        if kind == "recall":
            out[name] = sum(1 for d in top if d in relevant) / len(relevant)
        elif kind == "precision":
            out[name] = sum(1 for d in top if d in relevant) / k
        elif kind == "mrr":
            out[name] = next((1.0 / (i + 1) for i, d in enumerate(top) if d in relevant), 0.0)
        elif kind == "ndcg":
            dcg = sum(relevant.get(d, 0.0) / math.log2(i + 2) for i, d in enumerate(top))
            ideal = sorted(relevant.values(), reverse=True)[:k]
            idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
            out[name] = dcg / idcg
        else:
            raise ValueError(f"unknown metric {name!r}; choose recall@K, precision@K, mrr@K or ndcg@K")
    return out


def run_metrics(
    run: Mapping[str, Sequence[Hashable]],
    qrels: Mapping[str, Mapping[Hashable, int | float]],
    metrics: Sequence[str] = METRICS,
) -> dict[str, dict[str, float]]:
    """Per-query metrics of a whole run: ``{metric: {query id: value}}`` over the judged queries.

    Args:
        run: ``{query id: ranking}``; a judged query missing from the run scores 0.
        qrels: ``{query id: {doc id: grade}}``.
        metrics: metric names (see :func:`query_metrics`).
    """
    out: dict[str, dict[str, float]] = {m: {} for m in metrics}
    for qid, judged in qrels.items():
        values = query_metrics(run.get(qid, ()), judged, metrics)
        for m, v in values.items():
            out[m][qid] = v
    return out
