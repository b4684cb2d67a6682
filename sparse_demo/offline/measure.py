"""Measuring the demo model through the Search tab's code: held-out sweep and benchmarks.

:func:`search_metrics` builds a memory index with :func:`sparse_demo.search.build_index` and runs
:func:`sparse_demo.search.search` for BM25, the model alone and the min-max hybrid at several
weights; R@1 and MRR@10 are counted here from the hits. :func:`pick_weight` recommends the
hybrid weight with the best held-out MRR@10; :func:`benchmark_shared` measures KoBEST BoolQ and
KorSTS from ``../shared/data`` (never part of the repository).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


#: Hybrid weights (of the sparse leg) tried on the held-out set; the best MRR@10 is recommended.
WEIGHT_GRID = (0.1, 0.2, 0.3, 0.4, 0.5)



def held_out_metrics(model_dir: Path, pairs: Sequence[Any], passages: Sequence[str], weights: Sequence[float],
                     max_length: int) -> dict[str, dict[str, float]]:
    """R@1 / MRR@10 of BM25, the model alone and the hybrid at each weight, by the Search code.

    Each distinct query counts once, with every passage paired with it as gold.

    Args:
        model_dir: the model folder.
        pairs: held-out ``Pair(query, gold passage)``.
        passages: the corpus searched (the gold passages are added when missing).
        weights: hybrid weights (of the sparse leg) to try.
        max_length: the encoder's max length.
    """
    gold: dict[str, set[str]] = {}
    for p in pairs:
        gold.setdefault(p.query, set()).add(p.positive)
    return search_metrics(model_dir, list(gold), list(gold.values()), passages, weights, max_length)



def search_metrics(model_dir: Path, queries: Sequence[str], gold: Sequence[set[str]], passages: Sequence[str],
                   weights: Sequence[float], max_length: int) -> dict[str, dict[str, float]]:
    """R@1 / MRR@10 of BM25, the model and the hybrids for ``queries`` with gold passage texts, counted here.

    Args:
        model_dir: the model folder (loaded as the app loads it: float32 on CPU).
        queries: query texts (a repeated query counts once per occurrence).
        gold: per query, the texts of its gold passages.
        passages: the corpus searched (gold passages missing from it are added).
        weights: hybrid weights (of the sparse leg) to try.
        max_length: the encoder's max length.
    """
    from sparse_demo.corpus import Corpus, Document
    from sparse_demo.encoder import SpladeEncoder
    from sparse_demo.search import build_index, search

    texts = list(dict.fromkeys([*passages, *(t for g in gold for t in g)]))
    doc_id = {t: str(i) for i, t in enumerate(texts)}
    golds = [{doc_id[t] for t in g} for g in gold]
    encoder = SpladeEncoder.load(str(model_dir), device="cpu", max_length=max_length, name=model_dir.name)
    index = build_index(Corpus("demo-eval", [Document(doc_id[t], t) for t in texts]), encoder, "memory")
    runs: dict[str, list[list[str]]] = {"bm25": [], "model": []}
    runs.update({f"hybrid@{w:g}": [] for w in weights})
    for query in queries:
        runs["bm25"].append(search(index, query, method="bm25", k=10).ids)
        runs["model"].append(search(index, query, method="sparse", k=10).ids)
        for w in weights:
            runs[f"hybrid@{w:g}"].append(search(index, query, method="hybrid", k=10, weight=w).ids)
    out = {}
    for name, rankings in runs.items():
        r1 = sum(1 for r, g in zip(rankings, golds) if r and r[0] in g) / len(golds)
        mrr = sum(next((1.0 / (i + 1) for i, d in enumerate(r[:10]) if d in g), 0.0) for r, g in zip(rankings, golds))
        out[name] = {"R@1": round(r1, 4), "MRR@10": round(mrr / len(golds), 4)}
    return out



def benchmark_shared(model_dir: Path, weights: Sequence[float], max_length: int,
                     data_dir: str | Path | None = None) -> dict[str, Any]:
    """BM25, the model and the hybrids on KoBEST BoolQ test and KorSTS test (score >= 4), by the Search code.

    BoolQ: the test questions over every unique paragraph of the three splits; KorSTS: the test
    pairs scoring >= 4 over every sentence2 of the three splits, one query per pair (the data
    README's reference table). Needs ``../shared/data`` (never part of the repository).

    Raises:
        FileNotFoundError: the benchmark data folder is missing.
    """
    from sparse_demo.train import load_boolq, load_korsts

    out: dict[str, Any] = {}
    for name, (_pairs, rset) in (("BoolQ test", load_boolq("test", data_dir)),
                                ("KorSTS test >= 4", load_korsts("test", data_dir, corpus_from="all"))):
        logger.info("Benchmark %s: %d queries over %d passages", name, len(rset.queries), len(rset.corpus))
        gold = [{rset.corpus[i] for i in g} for g in rset.gold]
        out[name] = search_metrics(model_dir, rset.queries, gold, rset.corpus, weights, max_length)
    return out



def shared_texts(data_dir: str | Path | None = None) -> list[str]:
    """Every question, paragraph and sentence of BoolQ and KorSTS (all splits), for ``<unk>`` rates."""
    from sparse_demo.train import load_boolq, load_korsts

    texts: list[str] = []
    for split in ("train", "dev", "test"):
        pairs, _ = load_boolq(split, data_dir)
        texts += [t for p in pairs for t in (p.query, p.positive)]
        pairs, _ = load_korsts(split, data_dir, min_score=0.0)
        texts += [t for p in pairs for t in (p.query, p.positive)]
    return sorted(set(texts))



def pick_weight(metrics: dict[str, dict[str, float]], weights: Sequence[float]) -> float:
    """The hybrid weight with the best held-out MRR@10 (ties: the smaller weight)."""
    return max(weights, key=lambda w: (metrics[f"hybrid@{w:g}"]["MRR@10"], -w))



__all__ = ["WEIGHT_GRID", "benchmark_shared", "held_out_metrics", "pick_weight", "search_metrics", "shared_texts"]
