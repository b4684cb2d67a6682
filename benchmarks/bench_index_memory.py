"""Benchmark the in-memory index against brute force and bm25s, side by side in one run.

Synthetic corpus: ``--docs`` documents (default 100,000) whose tokens are drawn from a Zipf
distribution over ``--vocab`` token ids; each document keeps 150-300 distinct tokens with
positive weights (the sparse leg) and the same number of draws *with* repeats as its BM25
term list. Queries have 20-40 sparse tokens and 5-15 BM25 terms.

Sparse leg: ``SparseIndex`` (inverted index, accumulate per query token) versus a
brute-force ``scipy.sparse`` CSR matrix-vector product over all documents; top-10 checked
identical. BM25 leg: ``BM25Index(opensearch_compat=False)`` (and ``True``, the app's
setting) versus ``bm25s`` with ``method="lucene"`` on the same token lists, timed side by side
query by query over ``--repeat`` passes; top-10 checked identical.

Usage:
    python benchmarks/bench_index_memory.py [--docs 100000] [--queries 200] [--seed 0] [--skip-sparse] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import psutil
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sparse_demo.index.bm25 import BM25Index
from sparse_demo.index.memory import SparseIndex


def rss_mb() -> float:
    release_freed_memory()
    return psutil.Process().memory_info().rss / 2**20


def zipf_probs(vocab: int, a: float = 1.1) -> np.ndarray:
    p = 1.0 / np.arange(1, vocab + 1) ** a
    return p / p.sum()


def zipf_draws(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    """``size`` token ids drawn with probabilities ``p`` (inverse CDF; faster than choice)."""
    cdf = np.cumsum(p)
    cdf[-1] = 1.0
    return np.searchsorted(cdf, rng.random(size), side="right")


def release_freed_memory() -> None:
    """Hand freed heap pages back to the OS so RSS deltas measure what is kept."""
    gc.collect()
    with contextlib.suppress(OSError):  # not glibc: skip
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def make_corpus(n_docs: int, vocab: int, rng: np.random.Generator):
    """CSR pieces of the sparse corpus (distinct tokens) and the BM25 term draws."""
    p = zipf_probs(vocab)
    target = rng.integers(150, 301, size=n_docs)
    # BM25 term lists: `target` Zipf draws per document, repeats allowed.
    bm25_indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(target, out=bm25_indptr[1:])
    bm25_terms = zipf_draws(rng, p, int(bm25_indptr[-1]))
    # Sparse vectors: distinct tokens, drawn Zipf until each row has its target count.
    rows = np.repeat(np.arange(n_docs), target * 3)
    draws = zipf_draws(rng, p, rows.size)
    key = np.unique(rows.astype(np.int64) * vocab + draws)
    r, t = key // vocab, key % vocab
    order = np.lexsort((rng.random(r.size), r))  # random order within each row
    r, t = r[order], t[order]
    starts = np.searchsorted(r, np.arange(n_docs))
    pos = np.arange(r.size) - starts[r]
    keep = pos < target[r]
    r, t = r[keep], t[keep]
    counts = np.bincount(r, minlength=n_docs)
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    weights = rng.uniform(0.05, 3.0, size=t.size).astype(np.float32)
    return indptr, t.astype(np.int64), weights, bm25_indptr, bm25_terms.astype(np.int64)


def make_queries(n: int, vocab: int, rng: np.random.Generator, lo: int, hi: int) -> list[np.ndarray]:
    p = zipf_probs(vocab)
    out = []
    for _ in range(n):
        size = int(rng.integers(lo, hi + 1))
        q = np.unique(zipf_draws(rng, p, size * 3))
        out.append(rng.permutation(q)[:size])
    return out


class Mem:
    """Memory of one build: RSS delta, and tracemalloc's retained and peak bytes."""

    def __init__(self, rss: float, kept: float, peak: float):
        self.rss, self.kept, self.peak = rss, kept, peak

    def __str__(self) -> str:
        return f"RSS +{self.rss:6.0f} MB (kept {self.kept:6.0f} MB, peak {self.peak:6.0f} MB)"


def measure(build):
    """Run ``build()``; return its result, seconds, and :class:`Mem`.

    Timing and memory come from two separate builds, because tracemalloc slows Python code.
    """
    release_freed_memory()
    r0 = rss_mb()
    t0 = time.perf_counter()
    result = build()
    seconds = time.perf_counter() - t0
    rss = rss_mb() - r0
    del result
    release_freed_memory()
    tracemalloc.start()
    result = build()
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, Mem(rss, kept / 2**20, peak / 2**20)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def topk_csr(csr: sp.csr_matrix, qdense: np.ndarray, k: int, id_order: np.ndarray) -> list[int]:
    scores = csr @ qdense
    cand = np.flatnonzero(scores > 0)
    if cand.size > k:
        kth = np.partition(scores[cand], cand.size - k)[cand.size - k]
        cand = cand[scores[cand] >= kth]
    order = np.lexsort((id_order[cand], -scores[cand]))
    return cand[order[:k]].tolist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--vocab", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-bm25s", action="store_true")
    ap.add_argument("--skip-sparse", action="store_true", help="measure the BM25 leg only")
    ap.add_argument("--repeat", type=int, default=3, help="passes over the BM25 queries (latencies pooled)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    t0 = time.perf_counter()
    indptr, tokens, weights, bm25_indptr, bm25_terms = make_corpus(args.docs, args.vocab, rng)
    vocab = [f"tok{i}" for i in range(args.vocab)]
    ids = [f"doc{i:06d}" for i in range(args.docs)]
    id_order = np.arange(args.docs)  # ids sort like their row numbers
    lengths = np.diff(indptr)
    print(
        f"corpus: {args.docs:,} docs, {tokens.size:,} sparse entries "
        f"({lengths.min()}-{lengths.max()} tokens/doc, mean {lengths.mean():.0f}), "
        f"{bm25_terms.size:,} BM25 term occurrences; generated in {time.perf_counter() - t0:.1f}s"
    )
    sq = make_queries(args.queries, args.vocab, rng, 20, 40)
    sq_w = [rng.uniform(0.1, 2.5, size=q.size) for q in sq]
    bq = make_queries(args.queries, args.vocab, rng, 5, 15)

    # ---------------- sparse leg ----------------
    if not args.skip_sparse:

        def build_index():
            index = SparseIndex()
            index.add_encoded(ids, indptr, tokens, weights, vocab)
            index._store.matrix()  # consolidate now so the build is timed here
            return index

        def build_csr():
            csr = sp.csr_matrix((weights.copy(), tokens.astype(np.int32), indptr.copy()), shape=(args.docs, args.vocab))
            csr.sum_duplicates()
            return csr

        index, build_idx, mem_idx = measure(build_index)
        csr, build_csr_s, mem_csr = measure(build_csr)

        lat_idx, lat_csr, same = [], [], 0
        for q, w in zip(sq, sq_w):
            qvec = {vocab[t]: float(x) for t, x in zip(q.tolist(), w.tolist())}
            t0 = time.perf_counter()
            hits = index.search(qvec, 10)
            lat_idx.append((time.perf_counter() - t0) * 1000)
            qdense = np.zeros(args.vocab)
            qdense[q] = w
            t0 = time.perf_counter()
            ref = topk_csr(csr, qdense, 10, id_order)
            lat_csr.append((time.perf_counter() - t0) * 1000)
            same += [h.id for h in hits] == [ids[i] for i in ref]
        print("\nsparse leg (top-10, dot product)")
        print(
            f"  inverted index : p50 {pct(lat_idx, 50):7.2f} ms  p95 {pct(lat_idx, 95):7.2f} ms  "
            f"build {build_idx:6.2f} s  {mem_idx}"
        )
        print(
            f"  scipy CSR brute: p50 {pct(lat_csr, 50):7.2f} ms  p95 {pct(lat_csr, 95):7.2f} ms  "
            f"build {build_csr_s:6.2f} s  {mem_csr}"
        )
        print(
            f"  ratio (brute / index): p50 x{pct(lat_csr, 50) / pct(lat_idx, 50):.2f}  "
            f"p95 x{pct(lat_csr, 95) / pct(lat_idx, 95):.2f}"
        )
        print(f"  identical top-10: {same}/{len(sq)} queries")
        del csr, index
        gc.collect()

    # ---------------- BM25 leg ----------------
    def build_bm25(compat: bool):
        def build():
            bm = BM25Index(opensearch_compat=compat)
            bm.add_encoded(ids, bm25_indptr, bm25_terms, vocab)
            bm.n_docs  # noqa: B018 - builds postings and statistics
            return bm

        return build

    bm, build_bm, mem_bm = measure(build_bm25(False))
    bm_os, build_os, mem_os = measure(build_bm25(True))
    print("\nBM25 leg (top-10, Lucene formula k1=1.2 b=0.75)")
    query_terms = [[vocab[t] for t in q.tolist()] for q in bq]
    ref = None
    if not args.skip_bm25s:
        import bm25s

        token_lists = [bm25_terms[bm25_indptr[i] : bm25_indptr[i + 1]].tolist() for i in range(args.docs)]

        def build_bm25s():
            r = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
            r.index(
                bm25s.tokenization.Tokenized(ids=token_lists, vocab={v: i for i, v in enumerate(vocab)}),
                show_progress=False,
            )
            return r

        ref, build_ref, mem_ref = measure(build_bm25s)
    # Side by side: every query runs on each index in turn (rotating which goes first), and
    # the whole query set is repeated, so load from other processes hits all of them alike.
    runners = {
        "BM25Index      ": lambda i: bm.search(query_terms[i], 10),
        "BM25Index (OS) ": lambda i: bm_os.search(query_terms[i], 10),
    }
    if ref is not None:
        runners["bm25s (numpy)  "] = lambda i: ref.retrieve([bq[i].tolist()], k=10, show_progress=False, n_threads=0)
    lat: dict[str, list[float]] = {name: [] for name in runners}
    last: dict[str, list] = {name: [None] * len(bq) for name in runners}
    names = list(runners)
    for rep in range(args.repeat):
        for i in range(len(bq)):
            shift = (i + rep) % len(names)
            for name in names[shift:] + names[:shift]:
                t0 = time.perf_counter()
                last[name][i] = runners[name](i)
                lat[name].append((time.perf_counter() - t0) * 1000)
    builds = {"BM25Index      ": (build_bm, mem_bm), "BM25Index (OS) ": (build_os, mem_os)}
    if ref is not None:
        builds["bm25s (numpy)  "] = (build_ref, mem_ref)
    for name in names:
        seconds, mem = builds[name]
        print(
            f"  {name}: p50 {pct(lat[name], 50):7.2f} ms  p95 {pct(lat[name], 95):7.2f} ms  "
            f"build {seconds:6.2f} s  {mem}"
        )
    print("  (OS) = opensearch_compat=True, the app's setting: x2.2 scale, one-byte norms, float32 terms")
    if ref is not None:
        b, o, r = (lat[n] for n in names)
        print(
            f"  ratio (bm25s / BM25Index): p50 x{pct(r, 50) / pct(b, 50):.2f}  p95 x{pct(r, 95) / pct(b, 95):.2f}  "
            f"build x{build_ref / build_bm:.2f}"
        )
        print(
            f"  ratio (bm25s / BM25Index (OS)): p50 x{pct(r, 50) / pct(o, 50):.2f}  p95 x{pct(r, 95) / pct(o, 95):.2f}"
        )
        same = close = 0
        for mine, (docs, scores) in zip(last[names[0]], last[names[2]]):
            same += [h.id for h in mine] == [ids[j] for j in docs[0].tolist()]
            close += np.allclose([h.score for h in mine], scores[0], rtol=1e-5)
        print(f"  identical top-10 ids: {same}/{len(bq)} queries; top-10 scores within 1e-5: {close}/{len(bq)}")
    print(f"\nmedian latency over {len(sq)} queries; {statistics.mean(lengths):.0f} tokens/doc on average")


if __name__ == "__main__":
    main()
