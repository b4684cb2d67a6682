"""Quality against cost under pruning: top-k tokens and OpenSearch-style ``max_ratio`` pruning.

For every model of an :class:`~sparse_demo.evaluation.runner.EvalReport`, the cached document
vectors and the queries' vectors are pruned and searched with the memory backend's sparse leg
(:class:`sparse_demo.index.memory.SparseIndex`); each point records nDCG@10 with the FLOPS and
index bytes of the pruned vectors. Settings:

* ``doc top-k``: each document keeps its ``k`` heaviest tokens (queries unpruned);
* ``query top-k``: each query keeps its ``k`` heaviest tokens (documents unpruned);
* ``max_ratio``: both sides keep the tokens weighing at least ``ratio * max weight``, as
  OpenSearch's ``max_ratio`` prune type does.

Example:
    >>> prune_vector({"a": 1.0, "b": 0.5, "c": 0.05}, max_ratio=0.1)
    {'a': 1.0, 'b': 0.5}
    >>> prune_vector({"a": 1.0, "b": 0.5, "c": 0.05}, top_k=1)
    {'a': 1.0}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sparse_demo.index.memory import SparseIndex
from sparse_demo.progress import Progress, ShouldStop

from .cost import flops, index_bytes, mean_active
from .metrics import run_metrics
from .runner import EvalReport, EvaluationCancelled

logger = logging.getLogger(__name__)

PRUNE_KINDS: tuple[str, ...] = ("doc top-k", "query top-k", "max_ratio")
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


def _ndcg(
    queries: Sequence[str],
    qvecs: Sequence[Mapping[str, float]],
    doc_ids: Sequence[str],
    dvecs: Sequence[Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
) -> float:
    index = SparseIndex()
    keep = [(i, v) for i, v in zip(doc_ids, dvecs) if v]
    if keep:
        index.add([i for i, _ in keep], [v for _, v in keep])
    run = {q: [h.id for h in index.search(v, 10)] if v else [] for q, v in zip(queries, qvecs)}
    per_q = run_metrics(run, {q: qrels[q] for q in queries}, ("ndcg@10",))["ndcg@10"]
    return sum(per_q.values()) / len(per_q)


def prune_sweep(
    report: EvalReport,
    *,
    models: Sequence[str] | None = None,
    top_ks: Sequence[int] = DEFAULT_TOP_KS,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
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
            points.append(
                PrunePoint(
                    model,
                    kind,
                    setting,
                    _ndcg(queries, qv, doc_ids, dv, report.qrels),
                    flops(qv, dv),
                    index_bytes(dv),
                    mean_active(dv),
                    mean_active(qv),
                )
            )
            done += 1
            if progress is not None:
                progress(done / total, f"{model}: pruning {kind} {setting if setting is not None else ''}".strip())
    report.prune_sweep = points
    return points


__all__ = ["DEFAULT_RATIOS", "DEFAULT_TOP_KS", "PRUNE_KINDS", "PrunePoint", "prune_sweep", "prune_vector"]
