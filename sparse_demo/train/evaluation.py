"""Held-out evaluation of the model being trained, through the Search tab's own code.

One stack: the model in training is wrapped in a :class:`~sparse_demo.encoder.SpladeEncoder`
(the encoder every tab uses), the held-out passages are indexed with
:func:`sparse_demo.search.build_index` on the memory backend (BM25 with the default Korean
analyzer, Lucene's k1 1.2 / b 0.75; the sparse leg's exact dot product), each held-out query is
searched with :func:`sparse_demo.search.search` (``sparse``, ``bm25`` and ``hybrid`` = min-max
fusion at the Search tab's default weight 0.5, OpenSearch's normalization processor), and the
rankings are scored with :func:`sparse_demo.evaluation.retrieval_metrics`. The figures a run
reports are therefore the ones the Search tab gives for the saved model on the same passages
(on CPU, float32; the encoder's default ``max_length`` is replaced by the run's).

The held-out corpus is a :class:`~sparse_demo.corpus.Corpus` whose document ids are the
passages' positions (``"0"``, ``"1"``, ...) in :attr:`HeldOutSet.rset` ``.corpus`` (held-out
positives and negatives in first-seen order, then the distractors), with the held-out queries
(``"q0"``, ...) and their qrels, so the Search tab marks gold hits on it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sparse_demo.corpus import Corpus, Document, Query
from sparse_demo.evaluation import RetrievalMetrics, retrieval_metrics
from sparse_demo.train.data import Pair, RetrievalSet, retrieval_set_from_pairs

logger = logging.getLogger(__name__)

#: Held-out systems and the Search method each one runs.
SYSTEMS: dict[str, str] = {"model": "sparse", "bm25": "bm25", "hybrid": "hybrid"}
#: Hits per query the metrics look at (R@1/5/10, MRR@10, nDCG@10).
EVAL_DEPTH = 10


@dataclass
class HeldOutSet:
    """Held-out queries with gold passages over a corpus ready for :func:`sparse_demo.search.build_index`.

    Attributes:
        rset: queries, gold passage positions and passage texts.
        corpus: the same passages as documents ``"0"``, ``"1"``, ... with the queries and qrels.
    """

    rset: RetrievalSet
    corpus: Corpus

    def __len__(self) -> int:
        return len(self.rset)

    @property
    def queries(self) -> list[str]:
        return self.rset.queries

    @property
    def gold_ids(self) -> list[set[str]]:
        """Per query, the ids of its gold documents."""
        return [{str(i) for i in g} for g in self.rset.gold]

    @classmethod
    def from_retrieval_set(cls, rset: RetrievalSet) -> HeldOutSet:
        """Wrap a retrieval set (documents are numbered by their position in ``rset.corpus``)."""
        docs = [Document(str(i), text) for i, text in enumerate(rset.corpus)]
        queries = [Query(f"q{i}", q) for i, q in enumerate(rset.queries)]
        qrels = {f"q{i}": {str(d): 1 for d in g} for i, g in enumerate(rset.gold)}
        return cls(rset, Corpus(rset.name, docs, queries, qrels))

    @classmethod
    def from_pairs(
        cls,
        held: Sequence[Pair],
        distractors_from: Sequence[Pair] = (),
        *,
        distractors: int = 0,
        seed: int = 0,
        name: str = "held-out",
    ) -> HeldOutSet:
        """Held-out queries over their positives and negatives, plus ``distractors`` other passages.

        Args:
            held: the held-out pairs.
            distractors_from: pairs whose positives may be added as distractors (the training pairs).
            distractors: how many distractors to add (a seeded sample; fewer when fewer exist).
            seed: sampling seed.
            name: the set's name.
        """
        rset = retrieval_set_from_pairs(held, name)
        if distractors > 0:
            have = set(rset.corpus)
            extra = [d for d in dict.fromkeys(p.positive for p in distractors_from) if d not in have]
            rset.corpus.extend(random.Random(seed).sample(extra, min(len(extra), distractors)))
        return cls.from_retrieval_set(rset)


def metrics_rows(metrics: dict[str, RetrievalMetrics]) -> dict[str, dict[str, float]]:
    """``{system: {"R@1": .., "R@5": .., "R@10": .., "MRR@10": .., "nDCG@10": ..}}`` (JSON-ready)."""
    return {name: {k: float(v) for k, v in m.as_row().items()} for name, m in metrics.items()}


def evaluate_retrieval(
    model: Any,
    tokenizer: Any,
    heldout: HeldOutSet,
    *,
    max_length: int = 192,
    hybrid_weight: float = 0.5,
    systems: Sequence[str] = tuple(SYSTEMS),
    name: str = "model in training",
) -> dict[str, RetrievalMetrics]:
    """Model alone, BM25 and their hybrid on a held-out set, computed by the Search code.

    The model is put in eval mode for the evaluation and given back in the mode it was in.

    Args:
        model: a ``*ForMaskedLM`` model (any device).
        tokenizer: its tokenizer.
        heldout: the held-out set.
        max_length: tokens per text (documents and queries, as the Search tab encodes both).
        hybrid_weight: the sparse leg's weight in the min-max hybrid.
        systems: which of ``model``, ``bm25``, ``hybrid`` to compute.
        name: the encoder's display name (index key).

    Returns:
        ``{system: RetrievalMetrics}`` for the requested systems.

    Raises:
        ValueError: an unknown system name or an empty held-out set.
    """
    from sparse_demo.encoder import SpladeEncoder
    from sparse_demo.search import build_index, search

    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise ValueError(f"systems must be among {', '.join(SYSTEMS)}; got {', '.join(map(repr, unknown))}")
    if not len(heldout):
        raise ValueError("the held-out set has no query")
    needs_model = any(s != "bm25" for s in systems)
    was_training = model.training
    try:
        encoder = SpladeEncoder(model, tokenizer, name=name, max_length=max_length) if needs_model else None
        index = build_index(heldout.corpus, encoder, "memory")
        rankings: dict[str, list[list[str]]] = {s: [] for s in systems}
        for query in heldout.queries:
            for system in systems:
                outcome = search(index, query, method=SYSTEMS[system], k=EVAL_DEPTH, weight=hybrid_weight)
                rankings[system].append(outcome.ids)
    finally:
        model.train(was_training)
    gold = heldout.gold_ids
    return {s: retrieval_metrics(rankings[s], gold) for s in systems}


def query_expansions(
    model: Any, tokenizer: Any, queries: Sequence[str], *, max_length: int = 64, top: int = 10
) -> list[list[tuple[str, float]]]:
    """Each query's ``top`` heaviest search tokens ``(token, weight)``, as the Search tab encodes a query."""
    from sparse_demo.encoder import SpladeEncoder
    from sparse_demo.search import encode_query

    was_training = model.training
    try:
        encoder = SpladeEncoder(model, tokenizer, name="model in training", max_length=max_length)
        out = []
        for q in queries:
            vec, _ = encode_query(encoder, q, top)
            out.append([(token, round(float(w), 3)) for token, w in vec.items()])
        return out
    finally:
        model.train(was_training)


__all__ = ["EVAL_DEPTH", "SYSTEMS", "HeldOutSet", "evaluate_retrieval", "metrics_rows", "query_expansions"]
