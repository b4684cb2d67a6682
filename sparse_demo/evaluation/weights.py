"""The hybrid weight: one rule to choose it, and k-fold cross-validation so no query scores with a weight it chose.

The rule (:func:`choose_weight`): the grid weight with the best mean metric over the choosing
queries; ties (to 1e-12): the weight closest to 0.5, then the smaller (:data:`TIE_RULE`). The Evaluate
tab's ``hybrid:MODEL:best`` row and weight sweep, and the demo model's recommended weight, all use it.

Cross-validation (:func:`cross_validate_weight`): the queries are dealt into ``k`` seeded folds;
each fold's weight is chosen on the *other* folds' queries and that fold's queries are scored with it.
:func:`weight_sweep` runs both over a ranking function.

Example:
    >>> per_query = [{"q1": 0.0, "q2": 1.0}, {"q1": 1.0, "q2": 0.0}]  # two weights, two queries
    >>> choose_weight([0.3, 0.7], per_query, ["q1", "q2"])  # a tie: 0.3 and 0.7 are as close to 0.5
    0.3
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from .metrics import run_metrics

#: Folds of the hybrid weight's cross-validation.
DEFAULT_FOLDS = 5
#: How the weight is chosen, as stated to users.
TIE_RULE = "ties: the weight closest to 0.5, then the smaller"
#: Sparse weights of the hybrid sweep.
SWEEP_WEIGHTS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))


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
    weights: Sequence[float],
    per_query: Sequence[Mapping[str, float]],
    query_ids: Sequence[str],
    *,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
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


@dataclass
class WeightSweep:
    """The min-max hybrid's metric against the sparse weight, and the weights cross-validation chose.

    Attributes:
        model: the model.
        weights: the grid (0.0, 0.1, ..., 1.0).
        overall: the metric's mean over all evaluated queries at each weight (the curve).
        best_weight: the weight chosen on all queries (best ``overall``; :data:`~.sweeps.TIE_RULE`):
            what the Search tab may offer as a tuned default. It has seen every query, so it is
            not what the cross-validated row scores with.
        cv: the k-fold choice: the fold of each query and the weight each fold's queries are scored with.
        cv_mean: the metric's mean when every query is scored with its fold's weight (the row's value).
        num_queries: how many queries the sweep saw.
        seed: the seed of the fold assignment.
        metric: the metric that chooses.
    """

    model: str
    weights: list[float]
    overall: list[float]
    best_weight: float
    cv: CrossValidation
    cv_mean: float
    num_queries: int
    seed: int = 0
    metric: str = "ndcg@10"

    @property
    def folds(self) -> int:
        return self.cv.folds

    @property
    def fold_weights(self) -> list[float]:
        return self.cv.fold_weights

    @property
    def dev_queries(self) -> int:
        """The queries :attr:`best_weight` was chosen on (all of them); kept for older callers."""
        return self.num_queries

    def describe(self) -> str:
        """One sentence on how the weights were chosen (for notes, reports and status lines)."""
        grid = ", ".join(f"{w:g}" for w in self.weights)
        return (
            f"{self.model}: {self.folds}-fold cross-validation (seed {self.seed}) chose the weight of each fold on "
            f"the other folds' queries (best {self.metric} over the weights {grid}; "
            f"{TIE_RULE}): {self.cv.summary()} (folds: {', '.join(f'{w:g}' for w in self.fold_weights)}), "
            f"{self.metric} {self.cv_mean:.4f} with every query scored by a weight chosen without it. "
            f"Chosen on all {self.num_queries} queries: {self.best_weight:g} ({self.metric} "
            f"{max(self.overall):.4f}, optimistic), the weight offered to the Search tab."
        )


def weight_sweep(
    model: str,
    ranking_at: Callable[[float], Mapping[str, Sequence[str]]],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    metric: str = "ndcg@10",
    weights: Sequence[float] = SWEEP_WEIGHTS,
) -> WeightSweep:
    """``metric`` of the hybrid at each weight, with the weights ``folds``-fold cross-validation chose.

    Args:
        model: the model's name (for the description).
        ranking_at: ``ranking_at(weight)`` = ``{query id: ranked doc ids}`` of the hybrid at that weight.
        qrels: the judged queries.
        folds: k of the cross-validation.
        seed: seed of the fold assignment.
        metric: the metric that chooses.
        weights: the grid.

    Raises:
        ValueError: fewer than 2 queries or folds < 2.
    """
    qids = list(qrels)
    per_weight = [run_metrics(ranking_at(w), qrels, (metric,))[metric] for w in weights]
    cv = cross_validate_weight(weights, per_weight, qids, folds=folds, seed=seed)
    by_weight = dict(zip((float(w) for w in weights), per_weight))
    cv_mean = sum(by_weight[cv.weight_for(q)][q] for q in qids) / len(qids)
    overall = [sum(v[q] for q in qids) / len(qids) for v in per_weight]
    return WeightSweep(model, [float(w) for w in weights], overall, cv.all_weight, cv, cv_mean, len(qids), seed, metric)


__all__ = [
    "DEFAULT_FOLDS",
    "SWEEP_WEIGHTS",
    "TIE_RULE",
    "CrossValidation",
    "WeightSweep",
    "choose_weight",
    "cross_validate_weight",
    "kfold_assignment",
    "weight_sweep",
]
