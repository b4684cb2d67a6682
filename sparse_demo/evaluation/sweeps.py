"""Quality against cost under pruning: top-k tokens and OpenSearch-style ``max_ratio`` pruning.

For every model of an :class:`~sparse_demo.evaluation.runner.EvalReport`, the cached document
vectors and the queries' vectors are pruned and searched with the memory backend's sparse leg
(:class:`sparse_demo.index.memory.SparseIndex`); each point records nDCG@10 with the FLOPS and
index bytes of the pruned vectors. Settings:

* ``doc top-k``: each document keeps its ``k`` heaviest tokens (queries unpruned);
* ``query top-k``: each query keeps its ``k`` heaviest tokens (documents unpruned);
* ``max_ratio``: both sides keep the tokens weighing at least ``ratio * max weight``, as
  OpenSearch's ``max_ratio`` prune type does.

The hybrid weight is chosen by k-fold cross-validation (:func:`cross_validate_weight`): the
queries are dealt into ``k`` seeded folds; each fold's weight is the grid weight with the best mean
metric on the *other* folds' queries (ties: the weight closest to 0.5, then the smaller), and that
fold's queries are scored with it, so no query is scored by a weight chosen on it.

Example:
    >>> prune_vector({"a": 1.0, "b": 0.5, "c": 0.05}, max_ratio=0.1)
    {'a': 1.0, 'b': 0.5}
    >>> prune_vector({"a": 1.0, "b": 0.5, "c": 0.05}, top_k=1)
    {'a': 1.0}
    >>> per_query = [{"q1": 0.0, "q2": 1.0}, {"q1": 1.0, "q2": 0.0}]  # two weights, two queries
    >>> choose_weight([0.3, 0.7], per_query, ["q1", "q2"])  # a tie: 0.3 and 0.7 are as close to 0.5
    0.3
"""

from __future__ import annotations

import logging
import random
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .cost import flops, index_bytes, mean_active
from .metrics import run_metrics

logger = logging.getLogger(__name__)

PRUNE_KINDS: tuple[str, ...] = ("doc top-k", "query top-k", "max_ratio")
#: Folds of the hybrid weight's cross-validation.
DEFAULT_FOLDS = 5
#: How the weight is chosen, as stated to users.
TIE_RULE = "ties: the weight closest to 0.5, then the smaller"
DEFAULT_TOP_KS: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256)
DEFAULT_RATIOS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)


@dataclass(frozen=True)
class PrunePoint:
    """One pruning setting of one model."""

    model: str
    kind: str
    setting: float | None
    ndcg10: float
    flops: float
    index_bytes: int
    doc_active: float
    query_active: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prune_vector(
    vec: Mapping[str, float], *, top_k: int | None = None, max_ratio: float | None = None
) -> dict[str, float]:
    """Keep the ``top_k`` heaviest tokens (ties by token) and/or those >= ``max_ratio * max``.

    Raises:
        ValueError: ``top_k < 1`` or ``max_ratio`` outside [0, 1).
    """
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
    if max_ratio is not None and not 0.0 <= max_ratio < 1.0:
        raise ValueError(f"max_ratio must be in [0, 1), got {max_ratio}")
    items = sorted(vec.items(), key=lambda kv: (-kv[1], kv[0]))
    if max_ratio is not None and items:
        floor = items[0][1] * max_ratio
        items = [kv for kv in items if kv[1] >= floor]
    if top_k is not None:
        items = items[:top_k]
    return dict(items)


def _ndcg(queries: Sequence[str], qvecs: Sequence[Mapping[str, float]], doc_ids: Sequence[str],
          dvecs: Sequence[Mapping[str, float]], qrels: Mapping[str, Mapping[str, int]]) -> float:
    from sparse_demo.index.memory import SparseIndex

    index = SparseIndex()
    keep = [(i, v) for i, v in zip(doc_ids, dvecs) if v]
    if keep:
        index.add([i for i, _ in keep], [v for _, v in keep])
    run = {q: [h.id for h in index.search(v, 10)] if v else [] for q, v in zip(queries, qvecs)}
    per_q = run_metrics(run, {q: qrels[q] for q in queries}, ("ndcg@10",))["ndcg@10"]
    return sum(per_q.values()) / len(per_q)


def prune_sweep(
    report: Any,
    *,
    models: Sequence[str] | None = None,
    top_ks: Sequence[int] = DEFAULT_TOP_KS,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    progress: Callable[[float, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[PrunePoint]:
    """nDCG@10, FLOPS and index bytes of each model under each pruning setting (plus unpruned).

    Args:
        report: an evaluation report holding the models' runs (``report.model_runs``).
        models: models to sweep (default: every model of the report).
        top_ks: top-k settings, for documents and for queries.
        ratios: ``max_ratio`` settings.
        progress: ``progress(fraction, message)``.
        should_stop: polled per setting; True raises ``EvaluationCancelled``.

    Raises:
        ValueError: the report has no model, or an unknown model is named.
    """
    from .runner import EvaluationCancelled

    available = list(report.model_runs)
    chosen = list(models) if models else available
    unknown = [m for m in chosen if m not in report.model_runs]
    if not chosen or unknown:
        names = ", ".join(available) or "none"
        raise ValueError(f"the pruning sweep needs a model of the evaluation; available: {names}")
    queries = list(report.query_texts)
    settings: list[tuple[str, float | None]] = [("none", None)]
    settings += [("doc top-k", k) for k in top_ks] + [("query top-k", k) for k in top_ks]
    settings += [("max_ratio", r) for r in ratios]
    points: list[PrunePoint] = []
    total = len(chosen) * len(settings)
    done = 0
    for model in chosen:
        mr = report.model_runs[model]
        doc_ids = [d.id for d in mr.encoded.documents]
        dfull = [dict(d.sparse) for d in mr.encoded.documents]
        qfull = [mr.qvecs[q] for q in queries]
        for kind, setting in settings:
            if should_stop is not None and should_stop():
                raise EvaluationCancelled("pruning sweep cancelled")
            if kind == "doc top-k":
                dv, qv = [prune_vector(v, top_k=int(setting)) for v in dfull], qfull
            elif kind == "query top-k":
                dv, qv = dfull, [prune_vector(v, top_k=int(setting)) for v in qfull]
            elif kind == "max_ratio":
                dv = [prune_vector(v, max_ratio=setting) for v in dfull]
                qv = [prune_vector(v, max_ratio=setting) for v in qfull]
            else:
                dv, qv = dfull, qfull
            points.append(PrunePoint(model, kind, setting, _ndcg(queries, qv, doc_ids, dv, report.qrels),
                                     flops(qv, dv), index_bytes(dv), mean_active(dv), mean_active(qv)))
            done += 1
            if progress is not None:
                progress(done / total, f"{model}: pruning {kind} {setting if setting is not None else ''}".strip())
    report.prune_sweep = points
    return points


def choose_weight(weights: Sequence[float], per_query: Sequence[Mapping[str, float]], queries: Iterable[str]) -> float:
    """The weight whose queries' mean metric is highest (ties, to 1e-12: closest to 0.5, then the smaller).

    Args:
        weights: the grid.
        per_query: for each weight (same order), ``{query id: metric value}``.
        queries: the queries that choose (at least one).

    Raises:
        ValueError: no query, or ``per_query`` not one mapping per weight.
    """
    qs = list(queries)
    if not qs:
        raise ValueError("choosing a weight needs at least one query")
    if len(per_query) != len(weights) or not weights:
        raise ValueError(f"per_query holds {len(per_query)} weights' values for a grid of {len(weights)}")
    means = [sum(values[q] for q in qs) / len(qs) for values in per_query]
    best = max(range(len(weights)), key=lambda i: (round(means[i], 12), -round(abs(weights[i] - 0.5), 9), -weights[i]))
    return float(weights[best])


def kfold_assignment(query_ids: Sequence[str], folds: int, seed: int = 0) -> dict[str, int]:
    """``{query id: fold}``: the ids shuffled with ``random.Random(seed)`` and dealt round-robin into ``folds``.

    Fold sizes differ by at most one.

    Raises:
        ValueError: fewer than 2 folds, or more folds than queries.
    """
    ids = list(query_ids)
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    if folds > len(ids):
        raise ValueError(f"{folds} folds need at least {folds} queries, got {len(ids)}")
    order = list(ids)
    random.Random(seed).shuffle(order)
    return {q: i % folds for i, q in enumerate(order)}


@dataclass(frozen=True)
class CrossValidation:
    """The weights k-fold cross-validation chose, and the queries each scored.

    Attributes:
        folds: how many folds.
        fold_of: ``{query id: fold}``.
        fold_weights: fold ``i``'s weight, chosen on every query *not* in fold ``i``.
        all_weight: the weight chosen on all queries (what a later search should use).
    """

    folds: int
    fold_of: dict[str, int]
    fold_weights: list[float]
    all_weight: float

    def weight_for(self, query_id: str) -> float:
        """The weight ``query_id`` is scored with (its fold's, chosen without it)."""
        return self.fold_weights[self.fold_of[query_id]]

    def summary(self) -> str:
        """The fold weights in a few words, e.g. ``0.4-0.6, median 0.5`` (``0.5 in every fold``)."""
        lo, hi = min(self.fold_weights), max(self.fold_weights)
        if lo == hi:
            return f"{lo:g} in every fold"
        return f"{lo:g}-{hi:g}, median {statistics.median(self.fold_weights):g}"


def cross_validate_weight(
    weights: Sequence[float], per_query: Sequence[Mapping[str, float]], query_ids: Sequence[str], *,
    folds: int = DEFAULT_FOLDS, seed: int = 0,
) -> CrossValidation:
    """Choose a weight per fold on the other folds' queries (:func:`choose_weight`), and one on all queries.

    With fewer queries than ``folds``, every query is its own fold (leave-one-out).

    Args:
        weights: the grid.
        per_query: for each weight, ``{query id: metric value}`` over at least ``query_ids``.
        query_ids: the queries (at least 2).
        folds: k.
        seed: seed of the fold assignment.

    Raises:
        ValueError: fewer than 2 queries or folds < 2.
    """
    ids = list(query_ids)
    if len(ids) < 2:
        raise ValueError(f"cross-validating the hybrid weight needs at least 2 judged queries, got {len(ids)}")
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    k = min(folds, len(ids))
    fold_of = kfold_assignment(ids, k, seed)
    chosen = [choose_weight(weights, per_query, [q for q in ids if fold_of[q] != f]) for f in range(k)]
    return CrossValidation(k, fold_of, chosen, choose_weight(weights, per_query, ids))
