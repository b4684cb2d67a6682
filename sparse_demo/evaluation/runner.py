"""Run a table of systems over an evaluation set through the Search tab's code.

Every system goes through :func:`sparse_demo.search.build_index` and
:func:`sparse_demo.search.search`: per model and query one hybrid search fetches both legs
(BM25 and sparse, ``depth`` candidates each, from the memory backend or OpenSearch); the
sparse and BM25 rows are those legs, ranked as the Search tab ranks them, and every hybrid
row is :func:`sparse_demo.index.fuse` of the same legs, the call ``search`` makes. Without
any model, the BM25 row is ``search(method="bm25")`` on a BM25-only index.

The ``hybrid:MODEL:best`` row is honest about its weight: the weight is chosen by k-fold
cross-validation over the evaluated queries (k = 5 by default, folds seeded by ``seed``; see
:func:`sparse_demo.evaluation.weights.cross_validate_weight`), so each query is scored with a
weight chosen on the other folds' queries and the row's metrics, p-values and interval are over
all queries, none scored by a weight chosen on it. The weight offered to the Search tab as a tuned
default (:attr:`WeightSweep.best_weight`) is the one chosen on all queries.

Document encodings are cached per ``(encoder fingerprint, corpus fingerprint, doc_top_k)``
(:class:`EncodingCache`), so a second table on the same corpus and model does not re-encode.

Query latency of a system = the work that method does for one query, one query at a time:
Kiwi analysis (BM25 leg), query encoding (sparse leg), each leg's backend search, fusion.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sparse_demo.corpus import Corpus
from sparse_demo.encoder import Encoder
from sparse_demo.encoder.windows import WindowSettings
from sparse_demo.index import fuse
from sparse_demo.korean import bm25_terms
from sparse_demo.progress import Progress, ShouldStop, no_progress
from sparse_demo.search import (
    DEFAULT_DOC_TOP_K,
    DEFAULT_DOC_WINDOWS,
    DEFAULT_QUERY_TOP_K,
    build_index,
    corpus_fingerprint,
    encode_corpus,
    search,
)
from sparse_demo.search.build import model_fingerprint

from .cost import flops, index_bytes, mean_active, opensearch_store_bytes, percentile
from .metrics import METRICS, run_metrics
from .significance import ConfidenceInterval, SignificanceResult, bootstrap_ci, holm_adjust, paired_randomization_test
from .systems import SystemSpec
from .weights import DEFAULT_FOLDS, WeightSweep, weight_sweep

logger = logging.getLogger(__name__)


#: Metrics tested for significance (the card's columns).
TESTED_METRICS: tuple[str, ...] = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
BACKENDS: tuple[str, ...] = ("memory", "opensearch")
DEFAULT_DEPTH = 100


class EvaluationCancelled(RuntimeError):
    """Raised when ``should_stop()`` returned True."""


class EncodingCache:
    """Encoded corpora, least recently used first out, keyed by model and corpus fingerprint.

    An entry made only for visitors' uploads (corpora with an ``owner``) goes with :meth:`forget_owner`.
    """

    def __init__(self, max_entries: int = 6) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._owners: dict[tuple, set[str | None]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get_or_encode(
        self,
        corpus: Corpus,
        encoder: Encoder | None,
        *,
        doc_top_k: int | None,
        batch_size: int = 32,
        progress: Progress | None = None,
        doc_windows: WindowSettings = DEFAULT_DOC_WINDOWS,
        disk_cache: bool = False,
    ) -> tuple[Any, bool]:
        """``(EncodedCorpus, was_cached)`` for this corpus and encoder (None: BM25 terms only)."""
        key = (
            "" if encoder is None else model_fingerprint(encoder),
            corpus_fingerprint(corpus),
            None if encoder is None else doc_top_k,
            "" if encoder is None else doc_windows.key,
        )
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self._owners.setdefault(key, set()).add(getattr(corpus, "owner", None))
                self.hits += 1
                return found, True
        encoded = encode_corpus(
            corpus,
            encoder,
            batch_size=batch_size,
            doc_top_k=doc_top_k,
            progress=progress,
            windows=doc_windows,
            disk_cache=disk_cache,
        )
        with self._lock:
            self.misses += 1
            self._items[key] = encoded
            self._owners.setdefault(key, set()).add(getattr(corpus, "owner", None))
            while len(self._items) > self.max_entries:
                self._owners.pop(self._items.popitem(last=False)[0], None)
        return encoded, False

    def forget_owner(self, owner: str | None) -> int:
        """Drop the entries only ``owner``'s uploads use (the visitor left); returns how many."""
        dropped = 0
        with self._lock:
            for key in [k for k, who in self._owners.items() if owner and owner in who]:
                self._owners[key].discard(owner)
                if not self._owners[key]:
                    del self._owners[key]
                    self._items.pop(key, None)
                    dropped += 1
        return dropped


def query_side_label(encoder: Encoder) -> str:
    """``token weights`` for an inference-free query side (a tokenizer call), else ``MLM`` (a model call)."""
    return "token weights" if getattr(encoder, "inference_free", False) else "MLM"


#: The process-wide cache (the app's tab and repeated CLI calls in one process share it).
DEFAULT_CACHE = EncodingCache()


@dataclass(frozen=True)
class CostFigures:
    """What a system costs (None where it does not apply).

    Attributes:
        query_active: mean active dimensions per query (BM25: distinct terms).
        doc_active: mean active dimensions per document (BM25: distinct terms).
        flops: ``sum_v p_q(v) p_d(v)`` (hybrid: both legs summed).
        index_bytes: memory-backend bytes of the legs the system uses.
        opensearch_store_bytes: primary store size of the OpenSearch index (both legs).
        latency_p50_ms: median per-query latency.
        encode_docs_per_s: document encoding throughput of the model (BM25: Kiwi analysis).
        encodings_cached: the documents came from the encoding cache.
        query_encode_ms: median time to encode one query with the model's query side (None for BM25).
        query_side: what encoding a query runs: ``MLM`` (a model call) or ``token weights`` (an
            inference-free query side: one tokenizer call and a table look-up); "" for BM25.
    """

    query_active: float
    doc_active: float
    flops: float
    index_bytes: int
    opensearch_store_bytes: int | None
    latency_p50_ms: float
    encode_docs_per_s: float
    encodings_cached: bool = False
    query_encode_ms: float | None = None
    query_side: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "query_active_dims": round(self.query_active, 2),
            "doc_active_dims": round(self.doc_active, 2),
            "flops": round(self.flops, 4),
            "index_bytes": self.index_bytes,
            "opensearch_store_bytes": self.opensearch_store_bytes,
            "latency_p50_ms": round(self.latency_p50_ms, 3),
            "encode_docs_per_s": round(self.encode_docs_per_s, 1),
            "encodings_cached": self.encodings_cached,
            "query_encode_p50_ms": None if self.query_encode_ms is None else round(self.query_encode_ms, 3),
            "query_side": self.query_side,
        }


@dataclass
class SystemResult:
    """One row: mean metrics, per-query values, the run, costs and significance against the baseline."""

    spec: SystemSpec
    label: str
    means: dict[str, float]
    per_query: dict[str, dict[str, float]]
    run: dict[str, list[tuple[str, float]]]
    cost: CostFigures
    weight: float | None = None
    fold_weights: list[float] | None = None
    significance: dict[str, SignificanceResult] = field(default_factory=dict)
    p_holm: dict[str, float] = field(default_factory=dict)
    interval: ConfidenceInterval | None = None
    is_baseline: bool = False


@dataclass
class EvalReport:
    """Everything one evaluation produced (tables, runs, sweeps) plus how long it took."""

    name: str
    num_queries: int
    total_queries: int
    num_docs: int
    backend: str
    depth: int
    systems: list[SystemResult]
    baseline: str
    metric: str
    notes: list[str]
    seconds: float
    weight_sweeps: list[WeightSweep] = field(default_factory=list)
    query_texts: dict[str, str] = field(default_factory=dict)
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    prune_sweep: Any = None
    model_runs: dict = field(default_factory=dict, repr=False)
    #: Per model: how many documents were longer than it reads and how they were read (``WindowCounts``).
    document_windows: dict[str, Any] = field(default_factory=dict)

    def system(self, label: str) -> SystemResult:
        """The row with this label."""
        for s in self.systems:
            if s.label == label:
                return s
        raise ValueError(f"no system {label!r}; choose one of {', '.join(s.label for s in self.systems)}")


@dataclass
class _ModelRuns:
    """Per-query legs of one model's index."""

    legs: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # qid -> (bm25 leg, sparse leg)
    qvecs: dict[str, dict[str, float]] = field(default_factory=dict)
    encode_ms: dict[str, float] = field(default_factory=dict)
    index: Any = None
    encoded: Any = None
    cached: bool = False


def _ranked_leg(leg: Any, depth: int) -> list[tuple[str, float]]:
    """A leg's hits best first, ties by id (as ``search`` ranks a single leg)."""
    return [(h.id, float(h.score)) for h in sorted(leg.hits, key=lambda h: (-h.score, h.id))[:depth]]


def _fused(legs: tuple[Any, Any], fusion: str, weight: float | None, depth: int) -> list[tuple[str, float]]:
    weights = (1.0 - weight, weight) if fusion == "minmax" else None
    result = fuse(list(legs), method=fusion, weights=weights, k=depth)
    return [(h.id, float(h.score)) for h in result.hits]


def _check(should_stop: ShouldStop | None) -> None:
    if should_stop is not None and should_stop():
        raise EvaluationCancelled("evaluation cancelled")


def evaluate(
    eval_set: Corpus,
    systems: Sequence[SystemSpec],
    encoders: Mapping[str, Encoder],
    *,
    backend: str = "memory",
    depth: int = DEFAULT_DEPTH,
    baseline: int | str = 0,
    metric: str = "ndcg@10",
    trials: int = 10_000,
    resamples: int = 2_000,
    seed: int = 0,
    sweep_weights: bool = False,
    folds: int = DEFAULT_FOLDS,
    doc_top_k: int | None = None,
    query_top_k: int | None = None,
    batch_size: int = 32,
    cache: EncodingCache | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    opensearch_settings: Any | None = None,
    significance: bool = True,
    doc_windows: WindowSettings = DEFAULT_DOC_WINDOWS,
    disk_cache: bool = False,
) -> EvalReport:
    """Evaluate ``systems`` on ``eval_set``: metrics, significance, costs (and the weight sweep).

    Args:
        eval_set: a judged corpus, from :func:`sparse_demo.evaluation.load_eval_set` or ``make_eval_set``
            (every query judged).
        systems: rows (:func:`sparse_demo.evaluation.parse_system`); the first is the default baseline.
        encoders: ``{model name: Encoder}`` for every model the systems name.
        backend: ``"memory"`` or ``"opensearch"``.
        depth: hits fetched per leg and kept per run (>= 100 for recall@100).
        baseline: index or label of the baseline row.
        metric: the metric of the bootstrap interval and the weight sweep.
        trials: randomization-test sign vectors.
        resamples: bootstrap resamples.
        seed: seed of the tests and of the cross-validation folds.
        sweep_weights: also sweep the hybrid weight for every model.
        folds: k of the weight's cross-validation for a model without a ``hybrid:MODEL:best`` row
            (such a row brings its own ``folds``); fewer queries than folds: one fold per query.
        doc_top_k: tokens kept per document vector (None: the search defaults).
        query_top_k: tokens kept per query vector (None: the search defaults).
        batch_size: texts per encoder call.
        cache: encoding cache (default: the process-wide one).
        progress: ``progress(fraction, message)``.
        should_stop: polled between batches; True cancels with :class:`EvaluationCancelled`.
        opensearch_settings: ``ConnectionSettings`` for the OpenSearch backend.
        significance: run the randomization tests and the bootstrap interval against the baseline
            (False: metrics and costs only, as the trainer's held-out check needs).
        doc_windows: how a document longer than the model reads is read (all of it by default: the max over
            its windows; ``first`` truncates); the report's notes and ``document_windows`` say how many were.
        disk_cache: read and keep a shared set's document vectors on disk (the command line; never a
            visitor's model or a model in training).

    Raises:
        ValueError: bad options, an unknown model or an empty system list.
        EvaluationCancelled: ``should_stop()`` returned True.
    """
    t_start = time.perf_counter()
    if not systems:
        raise ValueError("give at least one system: bm25, sparse:MODEL, hybrid:MODEL[:WEIGHT|:best] or rrf:MODEL")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 10:
        raise ValueError(f"depth must be an integer >= 10 (hits per leg), got {depth!r}")
    labels = [s.label for s in systems]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ValueError(f"the same system is listed twice: {', '.join(dup)}")
    models = list(dict.fromkeys(s.model for s in systems if s.model))
    missing = [m for m in models if m not in encoders]
    if missing:
        raise ValueError(f"no encoder for model(s) {', '.join(missing)}; loaded: {', '.join(encoders) or 'none'}")
    tuned_folds = {s.model: s.folds for s in systems if s.tuned}
    if len({(s.model, s.folds) for s in systems if s.tuned}) != len(tuned_folds):
        raise ValueError("list one cross-validated hybrid row per model (two fold counts for one model)")
    if (tuned_folds or sweep_weights) and len(eval_set.queries) < 2:
        raise ValueError(
            "choosing the hybrid weight by cross-validation needs at least 2 judged queries; "
            f"this set has {len(eval_set.queries)}"
        )
    base_idx = baseline if isinstance(baseline, int) else (labels.index(baseline) if baseline in labels else -1)
    if not 0 <= base_idx < len(systems):
        raise ValueError(f"unknown baseline {baseline!r}; choose one of {', '.join(labels)}")
    cache = DEFAULT_CACHE if cache is None else cache
    report = progress or no_progress
    dtk = DEFAULT_DOC_TOP_K if doc_top_k is None else doc_top_k
    qtk = DEFAULT_QUERY_TOP_K if query_top_k is None else query_top_k
    corpus = eval_set
    qids = [q.id for q in eval_set.queries]
    unjudged = [q for q in qids if not any(g > 0 for g in eval_set.qrels.get(q, {}).values())]
    if not qids or unjudged:
        raise ValueError(
            f"{eval_set.name}: every evaluated query needs a relevant document; "
            f"{len(unjudged) if qids else 'no'} queries have none (check the set with make_eval_set)"
        )
    n_q = len(qids)
    notes = list(eval_set.notes)

    # ---- encode + index (one index per model; BM25-only when no model is listed)
    index_models: list[str | None] = list(models) or [None]
    runs: dict[str | None, _ModelRuns] = {}
    stage_share = 0.5 / len(index_models)
    for i, model in enumerate(index_models):
        _check(should_stop)
        enc = encoders[model] if model else None
        base = i * stage_share

        def enc_progress(f: float, msg: str, base: float = base, model: str | None = model) -> None:
            _check(should_stop)
            report(base + stage_share * 0.9 * f, f"{model or 'BM25'}: {msg}")

        encoded, cached = cache.get_or_encode(
            corpus,
            enc,
            doc_top_k=dtk,
            batch_size=batch_size,
            progress=enc_progress,
            doc_windows=doc_windows,
            disk_cache=disk_cache,
        )
        if cached:
            report(base + stage_share * 0.9, f"{model or 'BM25'}: encodings cached ({len(encoded.documents)} docs)")
        index = build_index(
            corpus,
            enc,
            backend,
            encoded=encoded,
            doc_top_k=dtk,
            query_top_k=qtk,
            batch_size=batch_size,
            opensearch_settings=opensearch_settings,
            doc_windows=doc_windows,
            progress=lambda f, msg, base=base, model=model: report(
                base + stage_share * (0.9 + 0.1 * f), f"{model or 'BM25'}: {msg}"
            ),
        )
        notes.extend(f"{model or 'BM25'}: {n}" for n in index.notes)
        runs[model] = _ModelRuns(index=index, encoded=encoded, cached=cached)

    # ---- query: one search per model and query (both legs), timed per component
    kiwi_ms: dict[str, float] = {}
    terms_of: dict[str, list[str]] = {}
    bm25_only: dict[str, list[tuple[str, float]]] = {}
    bm25_ms: dict[str, float] = {}
    sparse_ms: dict[str | None, dict[str, float]] = {m: {} for m in runs}
    for qi, qid in enumerate(qids):
        if qi % 16 == 0:
            _check(should_stop)
            report(0.5 + 0.4 * qi / max(n_q, 1), f"querying {qi}/{n_q}")
        text = eval_set.query_text(qid)
        t0 = time.perf_counter()
        terms_of[qid] = bm25_terms(text)
        kiwi_ms[qid] = (time.perf_counter() - t0) * 1000
        for model, mr in runs.items():
            if model is None:
                out = search(mr.index, text, method="bm25", k=depth)
                bm25_only[qid] = [(h.id, h.score) for h in out.hits]
                bm25_ms[qid] = out.legs["bm25"].took_ms
                continue
            out = search(  # only the legs are used (fused below, per weight): no fusion on the cluster
                mr.index,
                text,
                method="hybrid",
                k=depth,
                candidates=depth,
                fusion="minmax",
                weight=0.5,
                fusion_side="client",
            )
            mr.legs[qid] = (out.legs["bm25"], out.legs["sparse"])
            mr.qvecs[qid] = out.query_vector
            mr.encode_ms[qid] = out.encode_ms
            bm25_ms.setdefault(qid, out.legs["bm25"].took_ms)
            sparse_ms[model][qid] = out.legs["sparse"].took_ms

    # ---- weight sweeps
    sweeps: dict[str, WeightSweep] = {}
    want_sweep = set(models) if sweep_weights else {s.model for s in systems if s.tuned}
    for model in models:
        if model in want_sweep:
            _check(should_stop)
            report(0.9, f"{model}: sweeping the hybrid weight")
            legs = runs[model].legs
            sweeps[model] = weight_sweep(
                model,
                lambda w, legs=legs: {q: [d for d, _ in _fused(legs[q], "minmax", w, depth)] for q in qids},
                {q: eval_set.qrels[q] for q in qids},
                folds=tuned_folds.get(model, folds),
                seed=seed,
                metric=metric,
            )
            notes.append(sweeps[model].describe())

    # ---- rows
    doc_terms = [list(d.terms) for d in next(iter(runs.values())).encoded.documents]
    bm25_cost_terms = (flops([terms_of[q] for q in qids], doc_terms), index_bytes(doc_terms))
    first = next(iter(runs.values()))
    results: list[SystemResult] = []
    for spec in systems:
        _check(should_stop)
        fold_weights: list[float] | None = None
        if spec.kind == "bm25":
            mr = first
            run = bm25_only if None in runs else {q: _ranked_leg(mr.legs[q][0], depth) for q in qids}
            lat = [kiwi_ms[q] + bm25_ms[q] for q in qids]
            cost = CostFigures(
                mean_active([terms_of[q] for q in qids]),
                mean_active(doc_terms),
                bm25_cost_terms[0],
                bm25_cost_terms[1],
                opensearch_store_bytes(mr.index.backend),
                percentile(lat),
                _rate(mr.encoded),
                mr.cached,
            )
            weight = None
        else:
            mr = runs[spec.model]
            weight = spec.weight
            if spec.kind == "sparse":
                run = {q: _ranked_leg(mr.legs[q][1], depth) for q in qids}
                lat = [mr.encode_ms[q] + sparse_ms[spec.model][q] for q in qids]
            else:
                if spec.tuned:  # each query at its fold's weight, chosen on the other folds
                    cv = sweeps[spec.model].cv
                    spec = replace(spec, folds=cv.folds)  # fewer queries than folds: leave-one-out, said so
                    fold_weights, weight = list(cv.fold_weights), None
                run, lat = {}, []
                for q in qids:
                    t0 = time.perf_counter()
                    run[q] = _fused(mr.legs[q], spec.fusion, cv.weight_for(q) if spec.tuned else weight, depth)
                    fuse_ms = (time.perf_counter() - t0) * 1000
                    lat.append(kiwi_ms[q] + bm25_ms[q] + mr.encode_ms[q] + sparse_ms[spec.model][q] + fuse_ms)
            qv = [mr.qvecs[q] for q in qids]
            dv = [d.sparse for d in mr.encoded.documents]
            sp_flops, sp_bytes = flops(qv, dv), index_bytes(dv)
            if spec.kind == "hybrid":
                sp_flops += bm25_cost_terms[0]
                sp_bytes += bm25_cost_terms[1]
            cost = CostFigures(
                mean_active(qv),
                mean_active(dv),
                sp_flops,
                sp_bytes,
                opensearch_store_bytes(mr.index.backend),
                percentile(lat),
                _rate(mr.encoded),
                mr.cached,
                percentile([mr.encode_ms[q] for q in qids]),
                query_side_label(encoders[spec.model]),
            )
        per_q = run_metrics({q: [d for d, _ in run[q]] for q in qids}, {q: eval_set.qrels[q] for q in qids})
        means = {m: sum(v.values()) / n_q for m, v in per_q.items()}
        results.append(SystemResult(spec, spec.label, means, per_q, run, cost, weight, fold_weights))

    # ---- significance against the baseline, Holm across systems per metric
    base = results[base_idx]
    base.is_baseline = True
    others = [r for r in results if r is not base] if significance else []
    for m in TESTED_METRICS if others else ():
        a = [base.per_query[m][q] for q in qids]
        for r in others:
            r.significance[m] = paired_randomization_test(
                a, [r.per_query[m][q] for q in qids], trials=trials, seed=seed
            )
        adjusted = holm_adjust([r.significance[m].p_value for r in others])
        for r, p in zip(others, adjusted):
            r.p_holm[m] = p
    a = [base.per_query[metric][q] for q in qids]
    for r in others:
        r.interval = bootstrap_ci(a, [r.per_query[metric][q] for q in qids], resamples=resamples, seed=seed)
    report(1.0, f"evaluated {n_q} queries")
    seconds = time.perf_counter() - t_start
    logger.info("evaluated %d systems on %s (%d queries) in %.1fs", len(results), eval_set.name, n_q, seconds)
    return EvalReport(
        name=eval_set.name,
        num_queries=n_q,
        total_queries=eval_set.total_queries,
        num_docs=len(corpus),
        backend=backend,
        depth=depth,
        systems=results,
        baseline=base.label,
        metric=metric,
        notes=notes,
        seconds=seconds,
        weight_sweeps=list(sweeps.values()),
        query_texts={q: eval_set.query_text(q) for q in qids},
        qrels={q: dict(eval_set.qrels[q]) for q in qids},
        model_runs={m: r for m, r in runs.items() if m},
        document_windows={m: r.encoded.windows for m, r in runs.items() if m and r.encoded.windows is not None},
    )


def _rate(encoded: Any) -> float:
    n = len(encoded.documents)
    return n / encoded.seconds if encoded.seconds > 0 else 0.0
