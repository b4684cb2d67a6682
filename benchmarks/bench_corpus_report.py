"""Time and memory of the corpus report on synthetic corpora with a real-size XLM-R vocabulary.

The report alone is timed (not the encoding): synthetic document vectors with power-law skewed
token ids (``id = V * u**4``) over 250,002 dimensions, ``--dims`` active dimensions per document on average (a
uniform spread from a quarter of it up to ``--cap``), about 150 input tokens per document,
10% stopword tokens, and 200 queries of 30 tokens for the FLOPS figures. Peak memory is the
tracemalloc peak of the report call (numpy arrays included) next to the size of its input.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_corpus_report.py --docs 10000 100000
    OMP_NUM_THREADS=1 python benchmarks/bench_corpus_report.py --docs 10000 --pipeline ../shared/models/xlmr-tokenizer

``--pipeline`` times the whole report from ``{token: weight}`` index vectors instead (real
XLM-R tokenizer, Kiwi categories of every new token, input tokenisation), cold and warm.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from sparse_demo.corpus_report import corpus_report  # noqa: E402

VOCAB = 250_002


def synthetic(n_docs: int, dims: int, cap: int, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``(weights, inputs)`` for ``n_docs`` documents."""
    rng = np.random.default_rng(seed)
    lo = max(1, dims // 4)
    hi = min(cap, 2 * dims - lo)
    counts = rng.integers(lo, hi + 1, size=n_docs)
    total = int(counts.sum())
    cols = (VOCAB * rng.random(total) ** 4).astype(np.int64)  # skewed to low ids; duplicates are summed away
    vals = rng.lognormal(mean=-0.5, sigma=0.6, size=total).astype(np.float32)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    w = sp.csr_matrix((vals, cols.astype(np.int32), indptr), shape=(n_docs, VOCAB))
    w.sum_duplicates()
    n_in = 150
    in_cols = ((rng.zipf(1.2, size=n_docs * n_in) - 1) % VOCAB).astype(np.int32)
    inputs = sp.csr_matrix(
        (np.ones(in_cols.size, dtype=bool), in_cols, np.arange(0, n_docs * n_in + 1, n_in)), shape=(n_docs, VOCAB)
    )
    inputs.sum_duplicates()
    return w, inputs


class _TokenizerOnlyEncoder:
    """What ``report_from_vectors`` reads from an encoder, with the real XLM-R tokenizer and no model."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.name = "xlmr-tokenizer"
        self.max_length = 512
        self.drop_special = True
        self.special_ids = frozenset(int(i) for i in tokenizer.all_special_ids)
        self.vocab_size = len(tokenizer)
        self._tokens = [""] * self.vocab_size
        for tok, idx in tokenizer.get_vocab().items():
            self._tokens[idx] = tok

    def id_to_token(self, token_id: int) -> str:
        return self._tokens[token_id] or f"[{token_id}]"


def pipeline(n_docs: int, dims: int, tokenizer_dir: str) -> None:
    """The whole report from ``{token: weight}`` index vectors and texts (vocabulary lookups, input
    tokenisation, Kiwi categories of new tokens, surface keys), twice: cold and with the per-encoder caches warm."""
    import json
    from pathlib import Path

    from transformers import AutoTokenizer

    from sparse_demo.corpus_report import report_from_vectors

    enc = _TokenizerOnlyEncoder(AutoTokenizer.from_pretrained(tokenizer_dir))
    root = Path(__file__).resolve().parent.parent
    lines = (root / "assets" / "corpus" / "ko_sample" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    base = [json.loads(x)["text"] for x in lines if x.strip()]
    texts = [f"{base[i % len(base)]} ({i})" for i in range(n_docs)]
    w, _ = synthetic(n_docs, dims, 512)
    vectors = [
        dict(
            zip(
                (enc.id_to_token(int(c)) for c in w.indices[w.indptr[i] : w.indptr[i + 1]]),
                w.data[w.indptr[i] : w.indptr[i + 1]].tolist(),
            )
        )
        for i in range(n_docs)
    ]
    for label in ("cold", "warm"):
        t0 = time.perf_counter()
        r = report_from_vectors(enc, vectors, texts, doc_top_k=512)
        total = time.perf_counter() - t0
        print(
            f"pipeline {label}: {n_docs:,} documents, {r.totals.posting_entries:,} entries: {total:.2f} s in all, "
            f"{r.seconds:.2f} s in the core; {r.totals.distinct_tokens:,} distinct tokens"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--dims", type=int, default=200, help="mean active dimensions per document")
    ap.add_argument("--cap", type=int, default=512, help="document top-k cap")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--pipeline",
        metavar="TOKENIZER_DIR",
        default=None,
        help="also time the whole report from index vectors with this XLM-R tokenizer folder",
    )
    args = ap.parse_args()
    if args.pipeline:
        pipeline(args.docs[0], args.dims, args.pipeline)
        return
    rng = np.random.default_rng(1)
    # per-vocabulary arrays, cached per encoder by sparse_demo.corpus_report.build.vocabulary
    tokens = np.asarray([f"▁t{i}" for i in range(VOCAB)], dtype=object)
    display = np.asarray([f"t{i}" for i in range(VOCAB)], dtype=object)
    cats = np.where(rng.random(VOCAB) < 0.1, 1, 0).astype(np.uint8)
    cats[:5] = 2
    q_cols = ((rng.zipf(1.2, size=200 * 30) - 1) % VOCAB).astype(np.int32)
    queries = sp.csr_matrix((np.ones(q_cols.size), q_cols, np.arange(0, q_cols.size + 1, 30)), shape=(200, VOCAB))
    print(f"{'docs':>8} {'entries':>11} {'input MB':>9} {'best s':>7} {'peak MB':>8} {'tokens':>8}")
    for n in args.docs:
        w, inputs = synthetic(n, args.dims, args.cap)
        in_mb = (w.data.nbytes + w.indices.nbytes + w.indptr.nbytes) / 2**20
        times = []
        for _ in range(args.repeat):
            gc.collect()
            t0 = time.perf_counter()
            r = corpus_report(
                w, tokens, cats, inputs=inputs, queries=queries, doc_top_k=args.cap, display=display, keys=display
            )
            times.append(time.perf_counter() - t0)
        gc.collect()
        tracemalloc.start()
        corpus_report(
            w, tokens, cats, inputs=inputs, queries=queries, doc_top_k=args.cap, display=display, keys=display
        )
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"{n:>8,} {w.nnz:>11,} {in_mb:>9.1f} {min(times):>7.3f} {peak / 2**20:>8.1f} {r.totals.distinct_tokens:>8,}"
        )
        del w, inputs, r


if __name__ == "__main__":
    main()
