"""Held-out evaluation of the model being trained: :func:`sparse_demo.evaluation.evaluate`, nothing of its own.

The held-out pairs become a judged :class:`~sparse_demo.corpus.Corpus`
(:func:`heldout_corpus`: their positives and negatives, then seeded distractors from the training
pairs' positives; each distinct query relevant, grade 1, to its positives). The model in training is
wrapped in a :class:`~sparse_demo.encoder.SpladeEncoder` (the encoder every tab uses) and the three
rows, the model alone (``sparse``), ``BM25`` and their min-max ``hybrid`` at the run's weight, are
computed by the Evaluate tab's own function on the memory backend, without significance tests. The
figures a run reports are therefore the ones the Evaluate tab gives for the saved model on the same
passages (on CPU, float32; the encoder's default ``max_length`` is replaced by the run's).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Any

import torch

from sparse_demo.corpus import Corpus
from sparse_demo.data.pairs import Pair, corpus_from_pairs
from sparse_demo.encoder import SpladeEncoder
from sparse_demo.encoder.sides import StaticSide
from sparse_demo.evaluation import EncodingCache, EvalReport, RetrievalMetrics, SystemSpec, evaluate
from sparse_demo.search import encode_query

logger = logging.getLogger(__name__)

#: Held-out systems and the evaluation row kind each one is.
SYSTEMS: dict[str, str] = {"model": "sparse", "bm25": "bm25", "hybrid": "hybrid"}


def heldout_corpus(
    held: Sequence[Pair],
    distractors_from: Sequence[Pair] = (),
    *,
    distractors: int = 0,
    seed: int = 0,
    name: str = "held-out",
) -> Corpus:
    """Held-out queries over their positives and negatives, plus ``distractors`` other passages.

    Args:
        held: the held-out pairs.
        distractors_from: pairs whose positives may be added as distractors (the training pairs).
        distractors: how many distractors to add (a seeded sample; fewer when fewer exist).
        seed: sampling seed.
        name: the set's name.
    """
    extra: list[str] = []
    if distractors > 0:
        have = {p.positive for p in held} | {p.negative for p in held if p.negative}
        pool = [d for d in dict.fromkeys(p.positive for p in distractors_from) if d not in have]
        extra = random.Random(seed).sample(pool, min(len(pool), distractors))
    return corpus_from_pairs(held, name, extra)


def metrics_rows(metrics: dict[str, RetrievalMetrics]) -> dict[str, dict[str, float]]:
    """``{system: {"R@1": .., "R@5": .., "R@10": .., "MRR@10": .., "nDCG@10": ..}}`` (JSON-ready)."""
    return {name: {k: float(v) for k, v in m.as_row().items()} for name, m in metrics.items()}


def evaluate_retrieval(
    model: Any,
    tokenizer: Any,
    heldout: Corpus,
    *,
    max_length: int = 192,
    hybrid_weight: float = 0.5,
    systems: Sequence[str] = tuple(SYSTEMS),
    name: str = "model in training",
    query_weight: torch.Tensor | None = None,
) -> dict[str, RetrievalMetrics]:
    """Model alone, BM25 and their hybrid on a judged held-out corpus, by :func:`~sparse_demo.evaluation.evaluate`.

    The model is put in eval mode for the evaluation and given back in the mode it was in.

    Args:
        model: a ``*ForMaskedLM`` model (any device).
        tokenizer: its tokenizer.
        heldout: the judged corpus (:func:`heldout_corpus`).
        max_length: tokens per text (documents and queries, as the Search tab encodes both).
        hybrid_weight: the sparse leg's weight in the min-max hybrid.
        systems: which of ``model``, ``bm25``, ``hybrid`` to compute.
        name: the encoder's display name.
        query_weight: an inference-free model's ``[vocab]`` query weights: queries are encoded by
            looking them up (:class:`~sparse_demo.encoder.StaticSide`), documents by the model.

    Returns:
        ``{system: RetrievalMetrics}`` for the requested systems.

    Raises:
        ValueError: an unknown system name or a held-out corpus without judged queries.
    """
    report = heldout_report(
        model,
        tokenizer,
        heldout,
        max_length=max_length,
        hybrid_weight=hybrid_weight,
        systems=systems,
        name=name,
        query_weight=query_weight,
    )
    return {s: RetrievalMetrics.from_means(r.means, report.num_queries) for s, r in zip(systems, report.systems)}


def heldout_report(
    model: Any,
    tokenizer: Any,
    heldout: Corpus,
    *,
    max_length: int = 192,
    hybrid_weight: float = 0.5,
    systems: Sequence[str] = tuple(SYSTEMS),
    name: str = "model in training",
    query_weight: torch.Tensor | None = None,
) -> EvalReport:
    """The :class:`~sparse_demo.evaluation.EvalReport` behind :func:`evaluate_retrieval` (rows in ``systems`` order).

    Raises:
        ValueError: an unknown system name or a held-out corpus without judged queries.
    """
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise ValueError(f"systems must be among {', '.join(SYSTEMS)}; got {', '.join(map(repr, unknown))}")
    if not heldout.queries:
        raise ValueError("the held-out set has no query")
    specs = [
        SystemSpec(SYSTEMS[s], None if s == "bm25" else name, weight=hybrid_weight if s == "hybrid" else None)
        for s in systems
    ]
    was_training = model.training
    try:
        encoders = (
            {name: _encoder(model, tokenizer, name, max_length, query_weight)}
            if any(s != "bm25" for s in systems)
            else {}
        )
        return evaluate(heldout, specs, encoders, significance=False, cache=EncodingCache(max_entries=1))
    finally:
        model.train(was_training)


def _encoder(
    model: Any, tokenizer: Any, name: str, max_length: int, query_weight: torch.Tensor | None
) -> SpladeEncoder:
    """The model as every tab sees it; with ``query_weight``, an inference-free query side of those weights."""
    query = None if query_weight is None else StaticSide(tokenizer, query_weight, max_length=max_length)
    return SpladeEncoder(model, tokenizer, name=name, max_length=max_length, query=query)


def query_expansions(
    model: Any,
    tokenizer: Any,
    queries: Sequence[str],
    *,
    max_length: int = 64,
    top: int = 10,
    query_weight: torch.Tensor | None = None,
) -> list[list[tuple[str, float]]]:
    """Each query's ``top`` heaviest search tokens ``(token, weight)``, as the Search tab encodes a query
    (an inference-free model's: the ``query_weight`` of its tokens)."""
    was_training = model.training
    try:
        encoder = _encoder(model, tokenizer, "model in training", max_length, query_weight)
        out = []
        for q in queries:
            vec, _ = encode_query(encoder, q, top)
            out.append([(token, round(float(w), 3)) for token, w in vec.items()])
        return out
    finally:
        model.train(was_training)


__all__ = ["SYSTEMS", "evaluate_retrieval", "heldout_corpus", "heldout_report", "metrics_rows", "query_expansions"]
