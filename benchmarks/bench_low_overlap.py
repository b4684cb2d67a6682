"""Model folders alone against BM25 on KorSTS low-overlap pairs, as the showcase must-hold measures them.

``tests/test_showcase.py::test_v26_style_alone_beats_bm25_where_question_and_answer_share_few_words`` searches the
KorSTS pairs scoring >= 4 whose answer shares at most half of the question's content morphemes, of all three
splits (569 pairs: train 422, dev 64, test 83; the demo models never train on KorSTS), among all 8,000 KorSTS
sentences. This script builds that set (``--split all --size 0``, the defaults) or one split's pairs among their
gold sentences and evenly spaced others (``--size 2000``: how the test searched the 83 test pairs before), and
prints, for BM25 and each folder alone, R@1 and MRR@10, then per folder the paired comparison with BM25: the
questions whose gold sentence each ranks higher, and a two-sided sign test on them (how likely so uneven a split
is if neither system were better). One question moves R@1 by 1/83 = 0.012 on the test split alone, which is why
the test reads all three. ``--idf`` and ``--length`` add each folder rescored with what BM25 has on top of a
model's dot product: the corpus IDF, or a length normalisation (each sentence's score over its vector's L1 norm
to a power); if the latter still helps, the model favours sentences for being long.

Usage::

    python benchmarks/bench_low_overlap.py assets/demo-v26-style /path/to/another/build
    python benchmarks/bench_low_overlap.py --split test --size 2000 assets/demo-v26-style
    python benchmarks/bench_low_overlap.py --idf --length 0.2 --length 0.3 assets/demo-v26-style
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


METRICS = ("recall@1", "mrr@10")


def _per_question(rankings: list[list[str]], questions: list[tuple[str, str]]) -> list[dict[str, float]]:
    """R@1 and MRR@10 of each question (the Evaluate tab's metrics)."""
    from sparse_demo.evaluation.metrics import query_metrics

    return [query_metrics(r, {gold: 1}, METRICS) for r, (_, gold) in zip(rankings, questions, strict=True)]


def _means(values: list[dict[str, float]]) -> tuple[float, float]:
    return tuple(sum(v[m] for v in values) / len(values) for m in METRICS)  # type: ignore[return-value]


def _sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial p-value of ``wins`` against ``losses`` at p = 1/2."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def low_overlap_set(split: str, size: int = 2000) -> tuple[list[str], list[tuple[str, str]]]:
    """``(sentences, [(question, gold id)])``: the low-overlap pairs of ``split`` (``all``: the three splits)
    among their gold sentences and evenly spaced others, ``size`` sentences in all (0: every KorSTS sentence)."""
    from sparse_demo.data import load_korsts
    from sparse_demo.korean import CONTENT_TAGS, morphemes

    def content(text: str) -> set[str]:
        return {m.label for m in morphemes(text) if m.tag.split("-")[0] in CONTENT_TAGS}

    low, texts = [], []
    for name in ("train", "dev", "test") if split == "all" else (split,):
        pairs, judged = load_korsts(name, corpus_from="all")
        texts = texts or list(dict.fromkeys(d.text for d in judged.documents))
        low += [
            p
            for p in pairs
            if content(p.query) and len(content(p.query) & content(p.positive)) <= 0.5 * len(content(p.query))
        ]
    if size:
        gold_texts = list(dict.fromkeys(p.positive for p in low))
        step = max(1, len(texts) // size)
        texts = list(dict.fromkeys([*gold_texts, *texts[::step]]))[:size]
    ids = {t: str(i) for i, t in enumerate(texts)}
    return texts, [(p.query, ids[p.positive]) for p in low]


def _rescored(index, questions: list[tuple[str, str]], *, idf: bool = False, length: float = 0.0) -> list[list[str]]:
    """Top-10 sentence ids per question when the model's dot product is changed by what BM25 knows and the
    model's vectors may not: ``idf`` weights each term by the corpus IDF (BM25's, df: sentences whose vector holds
    the term), which no model sees; ``length`` divides each sentence's score by its vector's L1 norm to that power
    (a length normalisation: how much a model still favours a sentence for being long). The vectors are the
    search's own: the index's document vectors and the query side's."""
    import numpy as np
    import scipy.sparse as sp

    from sparse_demo.corpus_report.build import vectors_matrix, vocabulary
    from sparse_demo.search.encode import encode_query
    from sparse_demo.train.losses import idf_from_df

    encoder = index.encoder
    _, ids, _ = vocabulary(encoder)
    d = vectors_matrix([doc.sparse for doc in index.documents], ids, encoder.vocab_size)
    q = vectors_matrix([encode_query(encoder, text, index.query_top_k)[0] for text, _ in questions], ids, d.shape[1])
    if idf:
        q = q @ sp.diags(idf_from_df(np.asarray((d > 0).sum(axis=0)).ravel(), d.shape[0]))
    scores = (q @ d.T).toarray()
    if length:
        scores /= np.maximum(np.asarray(d.sum(axis=1)).ravel(), 1e-9) ** length
    doc_ids = [doc.id for doc in index.documents]
    return [[doc_ids[i] for i in np.argsort(-row, kind="stable")[:10]] for row in scores]


def _row(label: str, model: list[dict[str, float]], bm25: list[dict[str, float]]) -> str:
    # the gold's reciprocal rank decides which system ranks it higher (both outside the top 10: a tie)
    wins = sum(m["mrr@10"] > b["mrr@10"] for m, b in zip(model, bm25, strict=True))
    losses = sum(m["mrr@10"] < b["mrr@10"] for m, b in zip(model, bm25, strict=True))
    r1, mrr = _means(model)
    return f"| {label} | {r1:.3f} | {mrr:.3f} | {wins} / {losses} | {_sign_test(wins, losses):.2f} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path, help="model folders (SPLADE, as the app loads them)")
    parser.add_argument("--split", default="all", choices=("train", "dev", "test", "all"))
    parser.add_argument("--size", type=int, default=0, help="sentences searched, golds first (0: all of KorSTS)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--idf", action="store_true", help="also each model with its terms weighted by corpus IDF")
    parser.add_argument(
        "--length",
        type=float,
        action="append",
        default=[],
        help="also each model with each sentence's score divided by its vector's L1 norm to this power (repeatable)",
    )
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from sparse_demo.corpus import Corpus, Document
    from sparse_demo.encoder import SpladeEncoder
    from sparse_demo.search import build_index, search

    docs, questions = low_overlap_set(args.split, args.size)
    corpus = Corpus("low overlap", [Document(str(i), t) for i, t in enumerate(docs)])
    print(f"KorSTS {args.split} >= 4, low overlap: {len(questions)} questions over {len(docs)} sentences")
    print("| system | R@1 | MRR@10 | questions ranked higher than BM25 / lower | sign test p |")
    print("|---|---|---|---|---|")
    bm25: list[dict[str, float]] | None = None
    for folder in args.models:
        encoder = SpladeEncoder.load(str(folder), device="cpu", name=folder.name)
        index = build_index(corpus, encoder, "memory")
        if bm25 is None:
            bm25 = _per_question([search(index, q, method="bm25", k=10).ids for q, _ in questions], questions)
            r1, mrr = _means(bm25)
            print(f"| BM25 | {r1:.3f} | {mrr:.3f} | | |")
        model = _per_question([search(index, q, method="sparse", k=10).ids for q, _ in questions], questions)
        print(_row(f"{folder} alone", model, bm25))
        if args.idf:
            weighted = _per_question(_rescored(index, questions, idf=True), questions)
            print(_row(f"{folder} x corpus IDF", weighted, bm25))
        for power in args.length:
            normalised = _per_question(_rescored(index, questions, length=power), questions)
            print(_row(f"{folder} / L1(sentence) ^ {power:g}", normalised, bm25))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
