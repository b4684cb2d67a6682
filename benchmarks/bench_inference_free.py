"""How much quality does dropping the query encoder cost, for how much query speed? Side by side in one run.

Builds an inference-free variant of a model (default: the bundled demo model) with sentence-transformers
itself: a ``Router`` whose document side is the model (MLM + ``SpladePooling`` max) and whose query side is a
``SparseStaticEmbedding`` holding each token's IDF over the evaluated corpus (``log(1 + (N - df + 0.5) /
(df + 0.5))``, the usual inference-free query weight when no trained table exists), saved as a folder and
loaded back through the app's own loader. Then one :func:`sparse_demo.evaluation.evaluate` run (the
Evaluate tab's code) on KoBEST BoolQ test gives BM25, the full model and the inference-free variant (sparse
alone and hybrid at the model's recommended weight): R@1, MRR@10, nDCG@10 and the median query-encoding
time per side, measured in the same run.

Usage::

    OMP_NUM_THREADS=2 python benchmarks/bench_inference_free.py [--model assets/demo-v26-style] [--queries 500]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEMO_MODEL = ROOT / "assets" / "demo-v26-style"


def idf_table(tokenizer, texts: list[str]):
    """Each vocabulary id's BM25-style IDF over ``texts`` (0 for tokens that never occur)."""
    import torch

    n = len(texts)
    df: Counter[int] = Counter()
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        df.update(set(ids))
    table = torch.zeros(len(tokenizer.get_vocab()))
    for token_id, d in df.items():
        table[token_id] = math.log1p((n - d + 0.5) / (d + 0.5))
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--set", default="boolq:test")
    parser.add_argument("--queries", type=int, default=None, help="evaluate N sampled queries (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import (
        MLMTransformer,
        Router,
        SparseStaticEmbedding,
        SpladePooling,
    )

    torch.set_num_threads(args.threads)
    from sparse_demo.encoder import SpladeEncoder
    from sparse_demo.evaluation import evaluate, load_eval_set, parse_system, sample_queries, to_markdown
    from sparse_demo.model_settings import recommended_hybrid_weight

    corpus = load_eval_set(args.set)
    if args.queries:
        corpus = sample_queries(corpus, args.queries, 0)
    full = SpladeEncoder.load(args.model, device="cpu", name="full")
    texts = [f"{d.title}\n{d.text}" if d.title else d.text for d in corpus.documents]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "inference-free"
        router = Router.for_query_document(
            query_modules=[
                SparseStaticEmbedding(tokenizer=full.tokenizer, weight=idf_table(full.tokenizer, texts), frozen=True)
            ],
            document_modules=[MLMTransformer(args.model), SpladePooling("max")],
        )
        SparseEncoder(modules=[router], device="cpu", similarity_fn_name="dot").save(str(folder))
        free = SpladeEncoder.load(str(folder), device="cpu", name="inference-free")
        assert free.inference_free, "the query side should be a token-weight table"
        weight = recommended_hybrid_weight(args.model) or 0.5
        systems = [
            parse_system(s)
            for s in (
                "bm25",
                "sparse:full",
                "sparse:inference-free",
                f"hybrid:full:{weight}",
                f"hybrid:inference-free:{weight}",
            )
        ]
        report = evaluate(corpus, systems, {"full": full, "inference-free": free}, significance=False)
    print(f"{corpus.name}: {len(corpus.queries)} queries over {len(corpus):,} documents; hybrid weight {weight}\n")
    print("| system | R@1 | MRR@10 | nDCG@10 | query encode p50 ms (side) |")
    print("|---|---|---|---|---|")
    for r in report.systems:
        c = r.cost
        q = "—" if c.query_encode_ms is None else f"{c.query_encode_ms:.2f} ({c.query_side})"
        m = r.means
        print(f"| {r.label} | {m['recall@1']:.3f} | {m['mrr@10']:.3f} | {m['ndcg@10']:.3f} | {q} |")
    print("\n" + to_markdown(report, reference=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
